/* labmany - one process with thousands of threads, for the many-tasks sample.
 *
 *   labmany COUNT     start COUNT threads (comm "labmany"), each blocked in
 *                     futex(FUTEX_WAIT) forever, then report
 *                     "LABFACT many pid=<tgid> comm=labmany threads=<COUNT>",
 *                     create /tmp/labmany.ready (what /init waits for) and
 *                     wait in pause().
 *
 * Threads are the cheapest tasks (a task_struct and a 16 KiB kernel stack
 * each; the user stacks are made small). One summary record rather than one
 * per thread keeps the kernel log from overflowing and losing the other facts.
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "labfact.h"

static uint32_t never;          /* the futex word nobody wakes */
static volatile int started;    /* threads that reached their futex wait */

static void *blocker(void *arg)
{
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	for (;;)
		syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return arg;
}

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 0;
	pthread_attr_t attr;
	pthread_t tid;
	int i;

	prctl(PR_SET_NAME, "labmany", 0, 0, 0);
	if (count <= 0) {
		labfact("error usage: labmany COUNT");
		return 2;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (i = 0; i < count; i++) {
		if (pthread_create(&tid, &attr, blocker, NULL)) {
			labfact("error pid=%d pthread_create failed after %d threads", getpid(), i);
			return 1;
		}
	}
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < count)
		usleep(10000);
	labfact("many pid=%d comm=labmany threads=%d", getpid(), count);
	close(open("/tmp/labmany.ready", O_WRONLY | O_CREAT, 0644));
	for (;;)
		pause();
}
