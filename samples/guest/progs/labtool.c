/* labtool - the guest's actors around the labbug module.
 *
 *   labtool hold            take labbug_mutex and keep it (comm "labhold")
 *   labtool wait            block on labbug_mutex, D state (comm "labwait")
 *   labtool spin CPU        burn CPU CPU forever (comm "labspin")
 *   labtool crash CPU MSG   on CPU CPU, write MSG to /proc/labbug/trigger
 *                           (comm "labcrash"): the NULL dereference
 *   labtool irq CPU MSG     on CPU CPU, write MSG to /proc/labbug/irq (comm "labirq"):
 *                           spins in the kernel until a timer interrupt faults
 *
 * Each reports "LABFACT <role> pid=<pid> comm=<comm> [cpu=<cpu>]" first.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "labfact.h"

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		labfact("error pid=%d cannot pin to cpu %d", getpid(), cpu);
		exit(1);
	}
}

static int write_proc(const char *path, const char *msg)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, msg, strlen(msg)) < 0) {
		labfact("error pid=%d cannot write %s", getpid(), path);
		return 1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *role = argc > 1 ? argv[1] : "";

	if (!strcmp(role, "hold") || !strcmp(role, "wait")) {
		char comm[16], path[64];

		snprintf(comm, sizeof(comm), "lab%s", role);
		snprintf(path, sizeof(path), "/proc/labbug/%s", role);
		prctl(PR_SET_NAME, comm, 0, 0, 0);
		labfact("%s pid=%d comm=%s", role, getpid(), comm);
		return write_proc(path, role);
	}
	if (!strcmp(role, "spin") && argc == 3) {
		volatile unsigned long spins = 0;
		int cpu = atoi(argv[2]);

		prctl(PR_SET_NAME, "labspin", 0, 0, 0);
		pin(cpu);
		labfact("spin pid=%d comm=labspin cpu=%d", getpid(), cpu);
		for (;;)
			spins++;
	}
	if (!strcmp(role, "crash") && argc == 4) {
		int cpu = atoi(argv[2]);

		prctl(PR_SET_NAME, "labcrash", 0, 0, 0);
		pin(cpu);
		labfact("crash pid=%d comm=labcrash cpu=%d msg=%s", getpid(), cpu, argv[3]);
		return write_proc("/proc/labbug/trigger", argv[3]);
	}
	if (!strcmp(role, "irq") && argc == 4) {
		int cpu = atoi(argv[2]);

		prctl(PR_SET_NAME, "labirq", 0, 0, 0);
		pin(cpu);
		labfact("irq pid=%d comm=labirq cpu=%d msg=%s", getpid(), cpu, argv[3]);
		return write_proc("/proc/labbug/irq", argv[3]);
	}
	labfact("error usage: labtool hold|wait|spin CPU|crash CPU MSG|irq CPU MSG");
	return 2;
}
