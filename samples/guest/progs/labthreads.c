/* labthreads - one process whose threads block in different system calls.
 *
 * Each thread names itself (its comm) after what it waits in and reports
 * "LABFACT thread pid=<tgid> tid=<tid> comm=<name> syscall=<call>" before
 * blocking forever, so the dump shows a multithreaded task with distinct,
 * known kernel stacks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>

#include "labfact.h"

static int blocked_pipe[2];
static uint32_t futex_word;
static int listen_fd;

static void announce(const char *comm, const char *call)
{
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	labfact("thread pid=%d tid=%d comm=%s syscall=%s", getpid(),
		(int)syscall(SYS_gettid), comm, call);
}

static void *pipe_reader(void *arg)
{
	char c;

	announce("lt-read", "read");
	for (;;)
		(void)!read(blocked_pipe[0], &c, 1);
	return arg;
}

static void *sleeper(void *arg)
{
	struct timespec ts = { .tv_sec = 100000 };

	announce("lt-nanosleep", "nanosleep");
	for (;;)
		nanosleep(&ts, NULL);
	return arg;
}

static void *futex_waiter(void *arg)
{
	announce("lt-futex", "futex");
	for (;;)
		syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return arg;
}

static void *poller(void *arg)
{
	struct pollfd pfd = { .fd = blocked_pipe[0], .events = POLLIN };

	announce("lt-poll", "poll");
	for (;;)
		poll(&pfd, 1, -1);
	return arg;
}

static void *acceptor(void *arg)
{
	announce("lt-accept", "accept");
	for (;;)
		accept(listen_fd, NULL, NULL);
	return arg;
}

int main(void)
{
	void *(*bodies[])(void *) = { pipe_reader, sleeper, futex_waiter, poller, acceptor };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	pthread_t tid;
	unsigned int i;

	if (pipe(blocked_pipe))
		return 1;
	/* Abstract socket name: no file system needed. */
	listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(addr.sun_path, "\0labthreads", 11);
	if (listen_fd < 0 ||
	    bind(listen_fd, (struct sockaddr *)&addr, sizeof(sa_family_t) + 11) ||
	    listen(listen_fd, 1))
		return 1;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		if (pthread_create(&tid, NULL, bodies[i], NULL))
			return 1;
	announce("lt-main", "pause");
	for (;;)
		pause();
}
