/* labhuge - the huge sample's ~50,000 tasks, its lock pile-ups, its memory and its busy CPUs.
 *
 *   labhuge setup   memory in use (anonymous, tmpfs files, dentries and inodes), the lock
 *                   holders and their D-state waiters (through /proc/labbug/lock), then tens
 *                   of thousands of threads asleep in a few dozen distinct system calls, one
 *                   process per kind (KINDS below), a stopped process and zombies. Returns
 *                   once every thread is seen in its state in /proc (not after a sleep: a
 *                   starved TCG guest may not have run them yet); the processes stay.
 *   labhuge spin    one busy task on every CPU: user-mode spinners ("labspin") on even
 *                   CPUs, kernel-mode ones ("labchurn": reads of /dev/urandom) on odd CPUs,
 *                   CPU 0's at nice 19 so the shell that crashes the machine there still runs.
 *                   Returns once each runs on its CPU.
 *
 * LABHUGE_DIVISOR=N in the environment (a guest kernel command-line word reaches /init's
 * environment) divides the thread counts, the memory and the files by N: a quick trial run of the
 * scenario in a small guest while changing it; samples never set it.
 *
 * Facts go to the kernel log as LABFACT records (labfact.h), one per kind, lock, spinner and
 * memory area rather than one per thread, which would overflow the log:
 *   LABFACT kind name=<kind> comm=<comm> syscall=<call> processes=<n> threads=<n> pids=<a,b>
 *   LABFACT lock name=<lock> kind=mutex|rwsem holder_comm=<comm> holders=<n> holder_mode=<m>
 *           waiters=<n>                                    (the chain's holder counts as a waiter
 *                                                           of its second lock)
 *   LABFACT locks pid=<pid> comm=lab-locks                 (the holders' and waiters' process)
 *   LABFACT stopped pid=<pid> comm=<comm> threads=<n>      (SIGSTOPped: state T)
 *   LABFACT zombies pid=<parent> comm=<comm> count=<n>     (never reaped: state Z)
 *   LABFACT memory anon_mib=<n> tmpfs_mib=<n> files=<n>
 *   LABFACT meminfo <key>_kib=<n> ...                      (/proc/meminfo once set up)
 *   LABFACT spin pid=<pid> comm=<comm> cpu=<cpu> mode=user|kernel
 *   LABFACT huge tasks=<tasks under /proc when set up>
 * The labbug module itself logs every lock holder and waiter ("labbug: lock pid=… state=…").
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "labfact.h"

/* ---- sizes ---------------------------------------------------------------------------- */

#define THREADS_PER_PROCESS 5000	/* 2 mappings a thread stack; vm.max_map_count is 65530 */
#define THREAD_STACK (32 * 1024)
#define ANON_MIB 1024
#define TMPFS_MIB 512
#define FILES 30000
#define FILES_PER_DIR 1000
#define ZOMBIES 50
#define WAIT_LIMIT_S 1800		/* for threads to reach their state; then fail */

static int divisor = 1;

/* ``n`` for a real sample; ``n`` / LABHUGE_DIVISOR (at least 1) in a trial run. */
static int scaled(int n)
{
	return n / divisor > 0 ? n / divisor : 1;
}

static void die(const char *what)
{
	labfact("error pid=%d %s: %s", getpid(), what, strerror(errno));
	exit(1);
}

static void name_self(const char *comm)
{
	prctl(PR_SET_NAME, comm, 0, 0, 0);
}

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* ---- /proc: wait until tasks are really in their state -------------------------------- */

/* The state letter of /proc/<pid>/task/<tid>/stat, or 0 when it cannot be read. */
static char task_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' ? paren[2] : 0;
}

/* Count the threads of ``pid`` (other than ``skip``) in state ``want``; ``*total``: all of them.
 * -1 when ``pid`` is gone. */
static int threads_in(pid_t pid, pid_t skip, char want, int *total)
{
	char path[64];
	struct dirent *d;
	int in = 0, seen = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		pid_t tid = atoi(d->d_name);

		if (tid <= 0 || tid == skip)
			continue;
		seen++;
		if (task_state(pid, tid) == want)
			in++;
	}
	closedir(dir);
	*total = seen;
	return in;
}

/* Wait until ``pid`` has ``count`` threads (all but ``skip``), ``in_state`` of them in ``want``. */
static void wait_threads(pid_t pid, pid_t skip, int count, char want, int in_state, const char *what)
{
	time_t deadline = time(NULL) + WAIT_LIMIT_S;
	int total = 0, in;

	for (;;) {
		in = threads_in(pid, skip, want, &total);
		if (in == in_state && total == count)
			return;
		if (time(NULL) > deadline) {
			labfact("error pid=%d %s: %d of %d threads in state %c, %d expected", pid, what,
				in, total, want, in_state);
			exit(1);
		}
		usleep(200000);
	}
}

/* Wait until all ``count`` threads of ``pid`` but ``skip`` are in state ``want``. */
static void wait_threads_in(pid_t pid, pid_t skip, char want, int count, const char *what)
{
	wait_threads(pid, skip, count, want, count, what);
}

/* ---- thread pools ---------------------------------------------------------------------- */

static volatile int started;

static void spawn_threads(int count, void *(*body)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t tid;
	int i;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (i = 0; i < count; i++) {
		if (pthread_create(&tid, &attr, body, arg)) {
			labfact("error pid=%d pthread_create failed after %d threads", getpid(), i);
			exit(1);
		}
	}
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < count)
		usleep(10000);
}

static void arrive(void)
{
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
}

/* ---- the kinds of sleepers: one process (or a few) each, every thread in one call ------- */

/* What a kind's threads share, set up by its process before they start. */
static int fds[4];
static uint32_t word, word2;
static struct sockaddr_in inet_addr_;

static void *k_futex(void *a)
{
	arrive();
	for (;;)
		syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return a;
}

static void *k_futex_pi(void *a)
{
	arrive();
	for (;;)
		syscall(SYS_futex, &word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0);
	return a;
}

static void *k_futex_waitv(void *a)
{
	struct futex_waitv waiters[2] = {
		{ .val = 0, .uaddr = (uintptr_t)&word, .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG },
		{ .val = 0, .uaddr = (uintptr_t)&word2, .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG },
	};

	arrive();
	for (;;)
		syscall(SYS_futex_waitv, waiters, 2, 0, NULL, CLOCK_MONOTONIC);
	return a;
}

static void *k_nanosleep(void *a)
{
	struct timespec ts = { .tv_sec = 1000000 };

	arrive();
	for (;;)
		nanosleep(&ts, NULL);
	return a;
}

static void *k_clock_nanosleep(void *a)
{
	struct timespec ts = { .tv_sec = 1000000 };

	arrive();
	for (;;)
		clock_nanosleep(CLOCK_BOOTTIME, 0, &ts, NULL);
	return a;
}

static void *k_poll(void *a)
{
	struct pollfd pfd = { .fd = fds[0], .events = POLLIN };

	arrive();
	for (;;)
		poll(&pfd, 1, -1);
	return a;
}

static void *k_select(void *a)
{
	arrive();
	for (;;) {
		fd_set set;

		FD_ZERO(&set);
		FD_SET(fds[0], &set);
		select(fds[0] + 1, &set, NULL, NULL, NULL);
	}
	return a;
}

static void *k_epoll(void *a)
{
	struct epoll_event ev;

	arrive();
	for (;;)
		epoll_wait(fds[2], &ev, 1, -1);
	return a;
}

static void *k_read(void *a)
{
	char c;

	arrive();
	for (;;)
		(void)!read(fds[0], &c, 1);
	return a;
}

static void *k_write(void *a)
{
	char c = 'w';

	arrive();
	for (;;)
		(void)!write(fds[1], &c, 1);
	return a;
}

static void *k_recv(void *a)
{
	char buf[16];

	arrive();
	for (;;)
		recv(fds[0], buf, sizeof(buf), 0);
	return a;
}

static void *k_accept(void *a)
{
	arrive();
	for (;;)
		accept(fds[0], NULL, NULL);
	return a;
}

static void *k_pause(void *a)
{
	arrive();
	for (;;)
		pause();
	return a;
}

static void *k_sigsuspend(void *a)
{
	sigset_t none;

	sigemptyset(&none);
	arrive();
	for (;;)
		sigsuspend(&none);
	return a;
}

static void *k_sigwait(void *a)
{
	sigset_t set;
	siginfo_t info;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	arrive();
	for (;;)
		sigwaitinfo(&set, &info);
	return a;
}

static void *k_wait4(void *a)
{
	int status;

	arrive();
	for (;;)
		wait4(-1, &status, 0, NULL);
	return a;
}

static void *k_msgrcv(void *a)
{
	struct { long type; char text[16]; } msg;

	arrive();
	for (;;)
		msgrcv(fds[0], &msg, sizeof(msg.text), 0, 0);
	return a;
}

static void *k_semop(void *a)
{
	struct sembuf down = { .sem_num = 0, .sem_op = -1 };

	arrive();
	for (;;)
		semop(fds[0], &down, 1);
	return a;
}

static void *k_mqueue(void *a)
{
	char buf[64];

	arrive();
	for (;;)
		mq_receive(fds[0], buf, sizeof(buf), NULL);
	return a;
}

static void *k_read8(void *a)
{
	uint64_t v;

	arrive();
	for (;;)
		(void)!read(fds[0], &v, sizeof(v));
	return a;
}

static void *k_signalfd(void *a)
{
	struct signalfd_siginfo info;

	arrive();
	for (;;)
		(void)!read(fds[0], &info, sizeof(info));
	return a;
}

static void *k_inotify(void *a)
{
	char buf[4096];

	arrive();
	for (;;)
		(void)!read(fds[0], buf, sizeof(buf));
	return a;
}

/* flock and OFD locks belong to an open file description: each thread opens its own. */
static void *k_flock(void *a)
{
	int fd = open("/tmp/labhuge/flock", O_RDWR);

	if (fd < 0)
		die("open /tmp/labhuge/flock");
	arrive();
	for (;;)
		flock(fd, LOCK_EX);
	return a;
}

static void *k_ofd_lock(void *a)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = open("/tmp/labhuge/ofdlock", O_RDWR);

	if (fd < 0)
		die("open /tmp/labhuge/ofdlock");
	arrive();
	for (;;)
		fcntl(fd, F_OFD_SETLKW, &fl);
	return a;
}

/* ---- per-kind set-up, in the kind's own process ---------------------------------------- */

static void pipe_setup(void)
{
	if (pipe(fds))
		die("pipe");
}

static void full_pipe_setup(void)
{
	char block[4096];

	pipe_setup();
	memset(block, 'f', sizeof(block));
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	while (write(fds[1], block, sizeof(block)) > 0)
		;
	while (write(fds[1], block, 1) > 0)
		;
	fcntl(fds[1], F_SETFL, 0);
}

static void epoll_setup(void)
{
	struct epoll_event ev = { .events = EPOLLIN };

	pipe_setup();
	fds[2] = epoll_create1(0);
	if (fds[2] < 0 || epoll_ctl(fds[2], EPOLL_CTL_ADD, fds[0], &ev))
		die("epoll");
}

static void socketpair_setup(int type)
{
	if (socketpair(AF_UNIX, type, 0, fds))
		die("socketpair");
}

static void unix_stream_setup(void) { socketpair_setup(SOCK_STREAM); }
static void unix_dgram_setup(void) { socketpair_setup(SOCK_DGRAM); }

static void unix_listen_setup(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	memcpy(addr.sun_path, "\0labhuge", 8);
	fds[0] = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fds[0] < 0 || bind(fds[0], (struct sockaddr *)&addr, sizeof(sa_family_t) + 8) ||
	    listen(fds[0], 16))
		die("unix listen");
}

static int inet_bound(int type, int port)
{
	int fd = socket(AF_INET, type, 0), one = 1;

	inet_addr_.sin_family = AF_INET;
	inet_addr_.sin_port = htons(port);
	inet_addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&inet_addr_, sizeof(inet_addr_)))
		die("bind 127.0.0.1");
	return fd;
}

static void tcp_listen_setup(void)
{
	fds[0] = inet_bound(SOCK_STREAM, 7001);
	if (listen(fds[0], 16))
		die("listen 127.0.0.1:7001");
}

static void tcp_recv_setup(void)
{
	int listener = inet_bound(SOCK_STREAM, 7002), client;

	if (listen(listener, 1))
		die("listen 127.0.0.1:7002");
	client = socket(AF_INET, SOCK_STREAM, 0);
	if (client < 0 || connect(client, (struct sockaddr *)&inet_addr_, sizeof(inet_addr_)))
		die("connect 127.0.0.1:7002");
	fds[0] = accept(listener, NULL, NULL);
	fds[1] = client;
	if (fds[0] < 0)
		die("accept 127.0.0.1:7002");
}

static void udp_setup(void)
{
	fds[0] = inet_bound(SOCK_DGRAM, 7003);
}

static void block_signal(int sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		die("sigmask");
}

static void sigwait_setup(void) { block_signal(SIGUSR1); }

static void wait4_setup(void)
{
	pid_t child = fork();

	if (child < 0)
		die("fork");
	if (child == 0) {
		name_self("lab-child");
		for (;;)
			pause();
	}
}

static void msg_setup(void)
{
	fds[0] = msgget(IPC_PRIVATE, 0600);
	if (fds[0] < 0)
		die("msgget");
}

static void sem_setup(void)
{
	fds[0] = semget(IPC_PRIVATE, 1, 0600);
	if (fds[0] < 0)
		die("semget");
}

static void mq_setup(void)
{
	struct mq_attr attr = { .mq_maxmsg = 4, .mq_msgsize = 64 };

	fds[0] = mq_open("/labhuge", O_CREAT | O_RDWR, 0600, &attr);
	if (fds[0] < 0)
		die("mq_open");
}

static void eventfd_setup(void)
{
	fds[0] = eventfd(0, 0);
	if (fds[0] < 0)
		die("eventfd");
}

static void timerfd_setup(void)
{
	struct itimerspec its = { .it_value = { .tv_sec = 1000000 } };

	fds[0] = timerfd_create(CLOCK_MONOTONIC, 0);
	if (fds[0] < 0 || timerfd_settime(fds[0], 0, &its, NULL))
		die("timerfd");
}

static void signalfd_setup(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	block_signal(SIGUSR2);
	fds[0] = signalfd(-1, &set, 0);
	if (fds[0] < 0)
		die("signalfd");
}

static void inotify_setup(void)
{
	fds[0] = inotify_init();
	if (fds[0] < 0 || inotify_add_watch(fds[0], "/tmp/labhuge", IN_ATTRIB) < 0)
		die("inotify");
}

static int locked_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT, 0600);

	if (fd < 0)
		die(path);
	return fd;
}

static void flock_setup(void)
{
	if (flock(locked_file("/tmp/labhuge/flock"), LOCK_EX))
		die("flock");
}

static void ofd_lock_setup(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (fcntl(locked_file("/tmp/labhuge/ofdlock"), F_OFD_SETLK, &fl))
		die("F_OFD_SETLK");
}

static void futex_pi_setup(void)
{
	/* The process's main thread owns the PI futex: its TID in the word (uncontended lock). */
	word = (uint32_t)gettid_();
}

struct kind {
	const char *name;	/* comm is "lab-<name>" */
	const char *call;	/* the system call its threads sleep in */
	int threads;
	void (*setup)(void);
	void *(*body)(void *);
};

/* A few dozen distinct stacks; the big pile (futex) is a thread-pool's idle workers. */
static const struct kind KINDS[] = {
	{ "futex", "futex", 21000, NULL, k_futex },
	{ "futex-pi", "futex", 300, futex_pi_setup, k_futex_pi },
	{ "futex-waitv", "futex_waitv", 300, NULL, k_futex_waitv },
	{ "nanosleep", "nanosleep", 5000, NULL, k_nanosleep },
	{ "clocknsleep", "clock_nanosleep", 2000, NULL, k_clock_nanosleep },
	{ "poll", "poll", 3000, pipe_setup, k_poll },
	{ "select", "select", 1000, pipe_setup, k_select },
	{ "epoll", "epoll_wait", 5000, epoll_setup, k_epoll },
	{ "pipe-read", "read", 2000, pipe_setup, k_read },
	{ "pipe-write", "write", 500, full_pipe_setup, k_write },
	{ "unix-recv", "recvfrom", 2000, unix_stream_setup, k_recv },
	{ "unix-dgram", "recvfrom", 500, unix_dgram_setup, k_recv },
	{ "unix-accept", "accept", 500, unix_listen_setup, k_accept },
	{ "tcp-accept", "accept", 500, tcp_listen_setup, k_accept },
	{ "tcp-recv", "recvfrom", 500, tcp_recv_setup, k_recv },
	{ "udp-recv", "recvfrom", 500, udp_setup, k_recv },
	{ "pause", "pause", 1000, NULL, k_pause },
	{ "sigsuspend", "rt_sigsuspend", 500, NULL, k_sigsuspend },
	{ "sigwait", "rt_sigtimedwait", 500, sigwait_setup, k_sigwait },
	{ "wait4", "wait4", 200, wait4_setup, k_wait4 },
	{ "msgrcv", "msgrcv", 500, msg_setup, k_msgrcv },
	{ "semop", "semop", 500, sem_setup, k_semop },
	{ "mqueue", "mq_timedreceive", 300, mq_setup, k_mqueue },
	{ "eventfd", "read", 500, eventfd_setup, k_read8 },
	{ "timerfd", "read", 500, timerfd_setup, k_read8 },
	{ "signalfd", "read", 300, signalfd_setup, k_signalfd },
	{ "inotify", "read", 300, inotify_setup, k_inotify },
	{ "flock", "flock", 300, flock_setup, k_flock },
	{ "ofd-lock", "fcntl", 300, ofd_lock_setup, k_ofd_lock },
};

#define NKINDS (sizeof(KINDS) / sizeof(KINDS[0]))
#define MAX_SHARES 8

/* ---- child processes that report readiness on a pipe ------------------------------------ */

struct child {
	pid_t pid;
	int ready_fd;	/* the child writes one byte once set up */
};

static struct child fork_child(void (*body)(const void *, int), const void *arg)
{
	struct child c;
	int p[2];

	if (pipe(p))
		die("pipe");
	c.pid = fork();
	if (c.pid < 0)
		die("fork");
	if (c.pid == 0) {
		close(p[0]);
		body(arg, p[1]);
		_exit(0);
	}
	close(p[1]);
	c.ready_fd = p[0];
	return c;
}

static void child_ready(int fd)
{
	(void)!write(fd, "k", 1);
	close(fd);
}

static void await_child(struct child c, const char *what)
{
	char k;

	if (read(c.ready_fd, &k, 1) != 1) {
		labfact("error pid=%d %s (pid %d) failed to set up", getpid(), what, c.pid);
		exit(1);
	}
	close(c.ready_fd);
}

/* The body of one process of a kind: set up, start its threads, see them asleep, report. */
struct kind_part {
	const struct kind *kind;
	int threads;
};

static void kind_process(const void *arg, int ready)
{
	const struct kind_part *part = arg;
	char comm[16];

	snprintf(comm, sizeof(comm), "lab-%s", part->kind->name);
	name_self(comm);
	if (part->kind->setup)
		part->kind->setup();
	spawn_threads(part->threads, part->kind->body, NULL);
	wait_threads_in(getpid(), getpid(), 'S', part->threads, comm);
	child_ready(ready);
	for (;;)
		pause();
}

/* ---- the locks: holders first, then waiters, all through /proc/labbug/lock --------------- */

struct lock_role {
	const char *comm;
	const char *request;	/* written to /proc/labbug/lock */
	int count;
};

/* Order matters: holders (cfg's before io's, whose holder then waits for cfg) before waiters. */
static const struct lock_role HOLDERS[] = {
	{ "lh-big", "hold labbug_big_mutex write", 1 },
	{ "lh-cfg", "hold labbug_cfg_mutex write", 1 },
	{ "lh-table", "hold labbug_table_rwsem write", 1 },
	{ "lh-tree", "hold labbug_tree_rwsem read", 3 },
	{ "lh-io", "hold labbug_io_mutex write labbug_cfg_mutex write", 1 },
};

static const struct lock_role WAITERS[] = {
	{ "lw-big", "wait labbug_big_mutex write", 150 },
	{ "lw-cfg", "wait labbug_cfg_mutex write", 40 },
	{ "lw-io", "wait labbug_io_mutex write", 20 },
	{ "lw-table-r", "wait labbug_table_rwsem read", 60 },
	{ "lw-table-w", "wait labbug_table_rwsem write", 10 },
	{ "lw-tree-w", "wait labbug_tree_rwsem write", 20 },
};

#define NHOLDERS (sizeof(HOLDERS) / sizeof(HOLDERS[0]))
#define NWAITERS (sizeof(WAITERS) / sizeof(WAITERS[0]))

static void *lock_thread(void *arg)
{
	const struct lock_role *role = arg;
	int fd = open("/proc/labbug/lock", O_WRONLY);

	name_self(role->comm);
	if (fd < 0)
		die("open /proc/labbug/lock");
	if (write(fd, role->request, strlen(role->request)) < 0)
		labfact("error pid=%d tid=%d '%s' failed: %s", getpid(), gettid_(), role->request,
			strerror(errno));
	for (;;)
		pause();
	return NULL;
}

/* The module's count for ``lock`` in /proc/labbug/lock ("NAME holders=H waiting=W"). */
static int lock_count(const char *lock, const char *key)
{
	char text[1024], needle[64], *at;
	int fd = open("/proc/labbug/lock", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		die("open /proc/labbug/lock");
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		die("read /proc/labbug/lock");
	text[n] = 0;
	snprintf(needle, sizeof(needle), "%s ", lock);
	at = strstr(text, needle);
	if (!at || !(at = strstr(at, key)))
		return -1;
	return atoi(at + strlen(key));
}

static void wait_lock_count(const char *lock, const char *key, int want)
{
	time_t deadline = time(NULL) + WAIT_LIMIT_S;

	while (lock_count(lock, key) != want) {
		if (time(NULL) > deadline) {
			labfact("error %s: %s%d expected, %d seen", lock, key, want, lock_count(lock, key));
			exit(1);
		}
		usleep(100000);
	}
}

/* Word ``index`` of a request ("hold NAME MODE [NAME2 MODE2]"), or "" past its end. */
static void request_word(const char *request, int index, char *out, size_t size)
{
	const char *p = request;
	int i;

	for (i = 0; i < index && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p) {
		out[0] = 0;
		return;
	}
	snprintf(out, size, "%.*s", (int)strcspn(p, " "), p);
}

static void start_role(const struct lock_role *role)
{
	pthread_attr_t attr;
	pthread_t tid;
	int i;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (i = 0; i < role->count; i++)
		if (pthread_create(&tid, &attr, lock_thread, (void *)role))
			die("pthread_create (locks)");
}

/* Tasks that will wait for ``lock``: its waiters, and the holders whose chain ends there. */
static int waiters_of(const char *lock, int *holders_out)
{
	char name[32], chained[32];
	int total = 0, holders = 0;
	size_t i;

	for (i = 0; i < NWAITERS; i++) {
		request_word(WAITERS[i].request, 1, name, sizeof(name));
		if (!strcmp(name, lock))
			total += WAITERS[i].count;
	}
	for (i = 0; i < NHOLDERS; i++) {
		request_word(HOLDERS[i].request, 1, name, sizeof(name));
		request_word(HOLDERS[i].request, 3, chained, sizeof(chained));
		if (!strcmp(name, lock))
			holders += HOLDERS[i].count;
		if (!strcmp(chained, lock))
			total += HOLDERS[i].count;
	}
	if (holders_out)
		*holders_out = holders;
	return total;
}

static const char *const LOCKS[] = {
	"labbug_big_mutex", "labbug_cfg_mutex", "labbug_io_mutex",
	"labbug_table_rwsem", "labbug_tree_rwsem",
};

#define NLOCKS (sizeof(LOCKS) / sizeof(LOCKS[0]))

static void locks_process(const void *arg, int ready)
{
	int threads = 0, blocked = 0, holders;
	char lock[32], mode[8];
	size_t i;

	(void)arg;
	name_self("lab-locks");
	for (i = 0; i < NHOLDERS; i++) {
		request_word(HOLDERS[i].request, 1, lock, sizeof(lock));
		start_role(&HOLDERS[i]);
		waiters_of(lock, &holders);
		wait_lock_count(lock, "holders=", holders);
		threads += HOLDERS[i].count;
	}
	for (i = 0; i < NWAITERS; i++) {
		start_role(&WAITERS[i]);
		threads += WAITERS[i].count;
	}
	for (i = 0; i < NLOCKS; i++) {
		int waiters = waiters_of(LOCKS[i], NULL);

		wait_lock_count(LOCKS[i], "waiting=", waiters);
		blocked += waiters;
	}
	/* Every waiter, and the chain's holder, blocked (D); the other holders asleep (S). */
	wait_threads(getpid(), getpid(), threads, 'D', blocked, "lock waiters");
	wait_threads(getpid(), getpid(), threads, 'S', threads - blocked, "lock holders");
	for (i = 0; i < NHOLDERS; i++) {
		request_word(HOLDERS[i].request, 1, lock, sizeof(lock));
		request_word(HOLDERS[i].request, 2, mode, sizeof(mode));
		labfact("lock name=%s kind=%s holder_comm=%s holders=%d holder_mode=%s waiters=%d",
			lock, strstr(lock, "rwsem") ? "rwsem" : "mutex", HOLDERS[i].comm,
			HOLDERS[i].count, mode, waiters_of(lock, NULL));
	}
	child_ready(ready);
	for (;;)
		pause();
}

/* ---- memory in use ---------------------------------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill(uint64_t *p, size_t words, uint64_t seed)
{
	size_t i;

	for (i = 0; i < words; i++)
		p[i] = xorshift(&seed);
}

static void anon_process(const void *arg, int ready)
{
	size_t size = (size_t)scaled(ANON_MIB) << 20;
	uint64_t *p;

	(void)arg;
	name_self("lab-anon");
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap anonymous");
	fill(p, size / sizeof(*p), 0x1abb06);
	child_ready(ready);
	for (;;)
		pause();
}

static void tmpfs_files(void)
{
	static uint64_t block[1 << 17];	/* 1 MiB */
	char path[96];
	int i, fd = -1;

	if (mkdir("/tmp/labhuge", 0755) && errno != EEXIST)
		die("mkdir /tmp/labhuge");
	for (i = 0; i < scaled(TMPFS_MIB); i++) {
		if (i % 64 == 0) {
			if (fd >= 0)
				close(fd);
			snprintf(path, sizeof(path), "/tmp/labhuge/data-%d", i / 64);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0)
				die("create a tmpfs data file");
		}
		fill(block, sizeof(block) / sizeof(block[0]), 0x5eed + i);
		if (write(fd, block, sizeof(block)) != sizeof(block))
			die("write a tmpfs data file");
	}
	close(fd);
	/* Dentries and inodes: many small files. */
	for (i = 0; i < scaled(FILES); i++) {
		if (i % FILES_PER_DIR == 0) {
			snprintf(path, sizeof(path), "/tmp/labhuge/d%03d", i / FILES_PER_DIR);
			if (mkdir(path, 0755) && errno != EEXIST)
				die("mkdir");
		}
		snprintf(path, sizeof(path), "/tmp/labhuge/d%03d/f%05d", i / FILES_PER_DIR, i);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		if (fd < 0)
			die("create a small file");
		close(fd);
	}
}

static void report_meminfo(void)
{
	static const char *const KEYS[] = {
		"MemTotal", "MemFree", "Buffers", "Cached", "Shmem", "AnonPages", "Slab",
		"SUnreclaim", "KernelStack", "PageTables",
	};
	char text[8192], line[512], key[32];
	int fd = open("/proc/meminfo", O_RDONLY), n = 0;
	ssize_t got;
	size_t i;

	text[0] = '\n';	/* every key, the first one too, follows a newline */
	if (fd < 0)
		die("open /proc/meminfo");
	got = read(fd, text + 1, sizeof(text) - 2);
	close(fd);
	if (got <= 0)
		die("read /proc/meminfo");
	text[got + 1] = 0;
	n = snprintf(line, sizeof(line), "meminfo");
	for (i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
		char *at;

		snprintf(key, sizeof(key), "\n%s:", KEYS[i]);
		at = strstr(text, key);
		if (at)
			n += snprintf(line + n, sizeof(line) - n, " %s_kib=%ld", KEYS[i],
				      strtol(at + strlen(key), NULL, 10));
	}
	labfact("%s", line);
}

/* ---- setup ------------------------------------------------------------------------------ */

static void loopback_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr))
		die("SIOCGIFFLAGS lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		die("SIOCSIFFLAGS lo");
	close(fd);
}

static void zombies_process(const void *arg, int ready)
{
	pid_t kids[ZOMBIES];
	int i;

	(void)arg;
	name_self("lab-zombies");
	for (i = 0; i < ZOMBIES; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0)
			_exit(0);
	}
	for (i = 0; i < ZOMBIES; i++)
		wait_threads_in(kids[i], 0, 'Z', 1, "zombie");
	child_ready(ready);
	for (;;)
		pause();
}

static const struct kind STOPPED = { "stopped", "futex", 100, NULL, k_futex };

static int count_tasks(void)
{
	struct dirent *d;
	DIR *proc = opendir("/proc");
	int total = 0;

	if (!proc)
		die("opendir /proc");
	while ((d = readdir(proc))) {
		int pid = atoi(d->d_name), threads = 0;

		if (pid > 0 && threads_in(pid, 0, 0, &threads) >= 0)
			total += threads;
	}
	closedir(proc);
	return total;
}

static void facts_pids(char *out, size_t size, const struct child *procs, int n)
{
	size_t at = 0;
	int i;

	out[0] = 0;
	for (i = 0; i < n && at < size; i++)
		at += snprintf(out + at, size - at, "%s%d", i ? "," : "", procs[i].pid);
}

static int setup(void)
{
	static struct kind_part parts[NKINDS][MAX_SHARES];
	static struct child procs[NKINDS][MAX_SHARES];
	int nprocs[NKINDS];
	struct kind_part stopped_part = { &STOPPED, scaled(STOPPED.threads) };
	struct child anon, locks, zombies, stopped;
	char pids[256];
	size_t k, i;

	name_self("labhuge");
	loopback_up();
	anon = fork_child(anon_process, NULL);
	tmpfs_files();
	await_child(anon, "lab-anon");
	labfact("memory anon_mib=%d tmpfs_mib=%d files=%d", scaled(ANON_MIB), scaled(TMPFS_MIB),
		scaled(FILES));

	locks = fork_child(locks_process, NULL);
	await_child(locks, "lab-locks");

	/* Every kind's processes at once: the guest's 8 CPUs start their threads in parallel. */
	for (k = 0; k < NKINDS; k++) {
		/* Even shares: 21,000 futex threads are 5 processes of 4,200. */
		int threads = scaled(KINDS[k].threads);
		int shares = (threads + THREADS_PER_PROCESS - 1) / THREADS_PER_PROCESS;

		if (shares > MAX_SHARES) {
			labfact("error kind %s needs %d processes", KINDS[k].name, shares);
			return 1;
		}
		for (nprocs[k] = 0; nprocs[k] < shares; nprocs[k]++) {
			int n = threads / shares + (nprocs[k] < threads % shares);

			parts[k][nprocs[k]] = (struct kind_part){ &KINDS[k], n };
			procs[k][nprocs[k]] = fork_child(kind_process, &parts[k][nprocs[k]]);
		}
	}
	stopped = fork_child(kind_process, &stopped_part);
	zombies = fork_child(zombies_process, NULL);
	for (k = 0; k < NKINDS; k++)
		for (i = 0; i < (size_t)nprocs[k]; i++)
			await_child(procs[k][i], KINDS[k].name);
	await_child(stopped, "lab-stopped");
	await_child(zombies, "lab-zombies");

	/* The stopped process: every thread in do_signal_stop (T). */
	kill(stopped.pid, SIGSTOP);
	wait_threads_in(stopped.pid, 0, 'T', stopped_part.threads + 1, "lab-stopped");

	for (k = 0; k < NKINDS; k++) {
		facts_pids(pids, sizeof(pids), procs[k], nprocs[k]);
		labfact("kind name=%s comm=lab-%s syscall=%s processes=%d threads=%d pids=%s",
			KINDS[k].name, KINDS[k].name, KINDS[k].call, nprocs[k], scaled(KINDS[k].threads), pids);
	}
	labfact("stopped pid=%d comm=lab-stopped threads=%d", stopped.pid, stopped_part.threads);
	labfact("zombies pid=%d comm=lab-zombies count=%d", zombies.pid, ZOMBIES);
	labfact("locks pid=%d comm=lab-locks", locks.pid);
	report_meminfo();
	labfact("huge tasks=%d", count_tasks());
	return 0;
}

/* ---- busy CPUs -------------------------------------------------------------------------- */

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

/* The CPU field (39th) of /proc/<pid>/stat, and the state. */
static int running_on(pid_t pid, char *state)
{
	char path[64], buf[1024], *p;
	int fd, field;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	*state = p[2];
	for (field = 2; field < 39 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? atoi(p + 1) : -1;
}

static int spin(void)
{
	int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN), cpu;
	pid_t pids[256];

	for (cpu = 0; cpu < cpus && cpu < 256; cpu++) {
		int kernel = cpu % 2;

		pids[cpu] = fork();
		if (pids[cpu] < 0)
			die("fork");
		if (pids[cpu] == 0) {
			static char buf[1 << 16];
			volatile unsigned long spins = 0;
			int fd;

			name_self(kernel ? "labchurn" : "labspin");
			pin(cpu);
			if (cpu == 0)
				setpriority(PRIO_PROCESS, 0, 19);
			if (!kernel)
				for (;;)
					spins++;
			fd = open("/dev/urandom", O_RDONLY);
			if (fd < 0)
				die("open /dev/urandom");
			for (;;)
				(void)!read(fd, buf, sizeof(buf));
		}
	}
	for (cpu = 0; cpu < cpus && cpu < 256; cpu++) {
		time_t deadline = time(NULL) + WAIT_LIMIT_S;
		char state = 0;

		while (running_on(pids[cpu], &state) != cpu || state != 'R') {
			if (time(NULL) > deadline) {
				labfact("error spinner %d is not running on cpu %d", pids[cpu], cpu);
				return 1;
			}
			usleep(100000);
		}
		labfact("spin pid=%d comm=%s cpu=%d mode=%s", pids[cpu], cpu % 2 ? "labchurn" : "labspin",
			cpu, cpu % 2 ? "kernel" : "user");
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *trial = getenv("LABHUGE_DIVISOR");

	if (trial && atoi(trial) > 0)
		divisor = atoi(trial);
	if (argc == 2 && !strcmp(argv[1], "setup"))
		return setup();
	if (argc == 2 && !strcmp(argv[1], "spin"))
		return spin();
	labfact("error usage: labhuge setup|spin");
	return 2;
}
