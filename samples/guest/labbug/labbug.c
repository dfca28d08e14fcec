// SPDX-License-Identifier: GPL-2.0
/*
 * labbug - a deliberately buggy module for vmcore-dap's sample crash dumps.
 *
 * The guest's userspace drives it through five /proc files:
 *
 *   /proc/labbug/trigger  write "walk <counter>": labbug_walk() dereferences a
 *                         NULL list head ("BUG: kernel NULL pointer dereference").
 *   /proc/labbug/hold     the writer takes labbug_mutex and keeps it, sleeping
 *                         interruptibly (state S) until it gets a signal.
 *   /proc/labbug/wait     the writer blocks in mutex_lock(&labbug_mutex): D state.
 *   /proc/labbug/irq      write "irq <count>": arms a pinned hard-interrupt hrtimer on
 *                         the writer's CPU and spins in labbug_irq_wait() (preemption
 *                         off) until it fires; the callback's labbug_tick() dereferences
 *                         a NULL list head in hard interrupt context ("Fatal exception
 *                         in interrupt"), with the writer's kernel frame interrupted.
 *   /proc/labbug/lock     the huge sample's lock pile-ups on a handful of named mutexes
 *                         and rw-semaphores (labbug_locks[]); write
 *                           "hold NAME MODE"             take NAME (MODE read or write) and keep
 *                                                        it, sleeping interruptibly (S);
 *                           "hold NAME MODE NAME2 MODE2" take NAME, then block on NAME2 (a
 *                                                        lock chain: its owner waits, D);
 *                           "wait NAME MODE"             block on NAME (D);
 *                         read: one line per lock, "NAME holders=H waiting=W".
 *
 * Every fact the sample builder needs is printed to the kernel log with a
 * "labbug:" prefix, so it ends up in the dump's own dmesg.
 *
 * The builder finds the faulting line by the LABBUG-FAULT marker below and
 * checks it against the RIP of the oops; the locals marked "guaranteed" are
 * volatile or live after the fault, so -O2 cannot drop them.
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/atomic.h>
#include <linux/string.h>
#include <linux/fs.h>
#include <linux/delay.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/preempt.h>
#include <linux/version.h>

/*
 * One source for every kernel of the sample matrix (Debian 11's 5.10 … sid's 7.x): each
 * difference is a compatibility branch naming the kernel version that made it.
 */

/* in_hardirq() arrived in v5.11 (in_irq() renamed, preempt.h); 5.10 has in_irq() only. */
#ifndef in_hardirq
#define in_hardirq() in_irq()
#endif

#define LABBUG_NSAMPLES 4
#define LABBUG_MSGLEN 32
#define LABBUG_IRQ_DELAY_MS 20

enum labbug_mode {
	LABBUG_MODE_IDLE,
	LABBUG_MODE_PARSE,
	LABBUG_MODE_WALK,
};

struct labbug_node {
	struct labbug_node *next;
	int value;
};

struct labbug_device {
	const char *name;
	unsigned int magic;
	unsigned long writes;
	struct labbug_node *head;	/* never populated: the bug */
};

static struct labbug_device *labbug_dev;
static DEFINE_MUTEX(labbug_mutex);
static struct proc_dir_entry *labbug_dir;

/* The huge sample's locks: each with an owner (or reader owners) and tasks blocked on it. */
static DEFINE_MUTEX(labbug_big_mutex);
static DEFINE_MUTEX(labbug_cfg_mutex);
static DEFINE_MUTEX(labbug_io_mutex);
static DECLARE_RWSEM(labbug_table_rwsem);
static DECLARE_RWSEM(labbug_tree_rwsem);

struct labbug_lock {
	const char *name;
	struct mutex *mutex;		/* or */
	struct rw_semaphore *rwsem;
	atomic_t holders;		/* tasks that took it and keep it */
	atomic_t waiting;		/* tasks about to block on it (or blocked) */
};

static struct labbug_lock labbug_locks[] = {
	{ .name = "labbug_big_mutex", .mutex = &labbug_big_mutex },
	{ .name = "labbug_cfg_mutex", .mutex = &labbug_cfg_mutex },
	{ .name = "labbug_io_mutex", .mutex = &labbug_io_mutex },
	{ .name = "labbug_table_rwsem", .rwsem = &labbug_table_rwsem },
	{ .name = "labbug_tree_rwsem", .rwsem = &labbug_tree_rwsem },
};

/* The irq scenario: the timer, the count written, and whether the callback ran. */
static struct hrtimer labbug_timer;
static int labbug_irq_count;
static int labbug_irq_fired;

/* Keep the array's address escaping, so it must live in the frame. */
static noinline int labbug_checksum(const volatile int *v, int n)
{
	int i, sum = 0;

	for (i = 0; i < n; i++)
		sum += v[i];
	return sum;
}

static noinline int labbug_walk(struct labbug_device *dev,
				const char __user *ubuf, size_t len)
{
	char msg[LABBUG_MSGLEN];			/* guaranteed */
	volatile int samples[LABBUG_NSAMPLES];		/* guaranteed */
	volatile enum labbug_mode mode = LABBUG_MODE_IDLE;	/* guaranteed */
	volatile int counter = 0;			/* guaranteed */
	size_t n = min(len, sizeof(msg) - 1);
	int parsed = 0, i, total;

	memset(msg, 0, sizeof(msg));
	if (copy_from_user(msg, ubuf, n))
		return -EFAULT;
	mode = LABBUG_MODE_PARSE;
	if (sscanf(msg, "walk %d", &parsed) != 1)
		return -EINVAL;
	counter = parsed;
	for (i = 0; i < LABBUG_NSAMPLES; i++)
		samples[i] = (i + 1) * (i + 1) * counter;
	dev->writes++;
	mode = LABBUG_MODE_WALK;

	pr_info("labbug: walk pid=%d comm=%s cpu=%d mode=%d counter=%d msg=\"%s\" samples=%d,%d,%d,%d checksum=%d\n",
		task_pid_nr(current), current->comm, raw_smp_processor_id(),
		mode, counter, msg, samples[0], samples[1], samples[2],
		samples[3], labbug_checksum(samples, LABBUG_NSAMPLES));

	total = dev->head->value;	/* LABBUG-FAULT */

	/* Never reached; keeps every guaranteed local live past the fault. */
	pr_info("labbug: %s walked %d (mode %d, counter %d, first %d)\n",
		msg, total, mode, counter, samples[0]);
	return total;
}

/*
 * Runs in hard interrupt context (HRTIMER_MODE_*_HARD), from the timer's callback.
 * noclone: no labbug_tick.isra.0 (the oops and the DWARF name the function itself);
 * total is volatile so the faulting load stays on the marker's line.
 */
#define LABBUG_NOCLONE __attribute__((__noclone__))

static noinline LABBUG_NOCLONE int labbug_tick(struct labbug_device *dev, int count)
{
	volatile int ticks = count;			/* guaranteed */
	volatile unsigned int irq_cpu = raw_smp_processor_id();	/* guaranteed */
	volatile int total;

	dev->writes++;
	pr_info("labbug: tick pid=%d comm=%s cpu=%d ticks=%d irq_cpu=%u hardirq=%d\n",
		task_pid_nr(current), current->comm, raw_smp_processor_id(),
		ticks, irq_cpu, in_hardirq() ? 1 : 0);

	total = dev->head->value;	/* LABBUG-IRQ-FAULT */

	/* Never reached; keeps the guaranteed locals live past the fault. */
	pr_info("labbug: ticked %d (%d on cpu %u)\n", total, ticks, irq_cpu);
	return total;
}

static enum hrtimer_restart labbug_timer_fn(struct hrtimer *timer)
{
	WRITE_ONCE(labbug_irq_fired, 1);
	labbug_tick(labbug_dev, READ_ONCE(labbug_irq_count));
	return HRTIMER_NORESTART;
}

/* The interrupted kernel frame: spins until the timer's interrupt arrives. */
static noinline LABBUG_NOCLONE unsigned long labbug_irq_wait(void)
{
	volatile unsigned long spins = 0;		/* guaranteed */

	while (!READ_ONCE(labbug_irq_fired)) {
		spins++;
		cpu_relax();
	}
	return spins;
}

static ssize_t labbug_irq_write(struct file *file, const char __user *ubuf,
				size_t len, loff_t *ppos)
{
	char msg[LABBUG_MSGLEN];
	size_t n = min(len, sizeof(msg) - 1);
	int count;

	memset(msg, 0, sizeof(msg));
	if (copy_from_user(msg, ubuf, n))
		return -EFAULT;
	if (sscanf(msg, "irq %d", &count) != 1)
		return -EINVAL;
	WRITE_ONCE(labbug_irq_count, count);
	WRITE_ONCE(labbug_irq_fired, 0);
	/* No preemption: the interrupt must land in labbug_irq_wait() of this task, on this CPU. */
	preempt_disable();
	pr_info("labbug: irq pid=%d comm=%s cpu=%d count=%d delay_ms=%d\n",
		task_pid_nr(current), current->comm, raw_smp_processor_id(), count,
		LABBUG_IRQ_DELAY_MS);
	hrtimer_start(&labbug_timer, ms_to_ktime(LABBUG_IRQ_DELAY_MS), HRTIMER_MODE_REL_PINNED_HARD);
	labbug_irq_wait();
	preempt_enable();
	return len;
}

static ssize_t labbug_trigger_write(struct file *file, const char __user *ubuf,
				    size_t len, loff_t *ppos)
{
	int ret = labbug_walk(labbug_dev, ubuf, len);

	return ret < 0 ? ret : len;
}

static ssize_t labbug_hold_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *ppos)
{
	mutex_lock(&labbug_mutex);
	pr_info("labbug: hold pid=%d comm=%s acquired labbug_mutex\n",
		task_pid_nr(current), current->comm);
	while (!signal_pending(current))
		msleep_interruptible(60 * 1000);
	mutex_unlock(&labbug_mutex);
	return len;
}

static ssize_t labbug_wait_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *ppos)
{
	pr_info("labbug: wait pid=%d comm=%s blocking on labbug_mutex\n",
		task_pid_nr(current), current->comm);
	mutex_lock(&labbug_mutex);
	pr_info("labbug: wait pid=%d acquired labbug_mutex\n", task_pid_nr(current));
	mutex_unlock(&labbug_mutex);
	return len;
}

static struct labbug_lock *labbug_find_lock(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(labbug_locks); i++)
		if (!strcmp(labbug_locks[i].name, name))
			return &labbug_locks[i];
	return NULL;
}

/* Take a lock the way its holders and waiters do: mutex_lock, down_read or down_write (D). */
static noinline void labbug_lock_take(struct labbug_lock *lock, bool write)
{
	if (lock->mutex)
		mutex_lock(lock->mutex);
	else if (write)
		down_write(lock->rwsem);
	else
		down_read(lock->rwsem);
}

static noinline void labbug_lock_release(struct labbug_lock *lock, bool write)
{
	if (lock->mutex)
		mutex_unlock(lock->mutex);
	else if (write)
		up_write(lock->rwsem);
	else
		up_read(lock->rwsem);
}

/* Block on ``lock`` (reported first, so the log names every waiter); returns once taken. */
static noinline void labbug_lock_block(const char *op, struct labbug_lock *lock, bool write)
{
	pr_info("labbug: lock pid=%d comm=%s op=%s lock=%s mode=%s state=blocking\n",
		task_pid_nr(current), current->comm, op, lock->name, write ? "write" : "read");
	atomic_inc(&lock->waiting);
	labbug_lock_take(lock, write);
	atomic_dec(&lock->waiting);
	pr_info("labbug: lock pid=%d comm=%s op=%s lock=%s mode=%s state=acquired\n",
		task_pid_nr(current), current->comm, op, lock->name, write ? "write" : "read");
}

/* Keep a taken lock, sleeping interruptibly (S), until a signal. */
static noinline void labbug_lock_keep(void)
{
	while (!signal_pending(current))
		msleep_interruptible(60 * 1000);
}

static ssize_t labbug_lock_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *ppos)
{
	char msg[128], op[8], name[32], mode[8], name2[32], mode2[8];
	struct labbug_lock *lock, *next = NULL;
	size_t n = min(len, sizeof(msg) - 1);
	bool write, write2 = false;
	int fields;

	memset(msg, 0, sizeof(msg));
	if (copy_from_user(msg, ubuf, n))
		return -EFAULT;
	fields = sscanf(msg, "%7s %31s %7s %31s %7s", op, name, mode, name2, mode2);
	if (fields != 3 && !(fields == 5 && !strcmp(op, "hold")))
		return -EINVAL;
	lock = labbug_find_lock(name);
	write = !strcmp(mode, "write");
	if (!lock || (!write && (strcmp(mode, "read") || lock->mutex)))
		return -EINVAL;
	if (fields == 5) {
		next = labbug_find_lock(name2);
		write2 = !strcmp(mode2, "write");
		if (!next || next == lock || (!write2 && (strcmp(mode2, "read") || next->mutex)))
			return -EINVAL;
	}
	if (!strcmp(op, "wait")) {
		labbug_lock_block("wait", lock, write);
		labbug_lock_release(lock, write);
		return len;
	}
	if (strcmp(op, "hold"))
		return -EINVAL;
	labbug_lock_take(lock, write);
	atomic_inc(&lock->holders);
	pr_info("labbug: lock pid=%d comm=%s op=hold lock=%s mode=%s state=acquired\n",
		task_pid_nr(current), current->comm, lock->name, write ? "write" : "read");
	if (next) {
		labbug_lock_block("chain", next, write2);
		labbug_lock_keep();
		labbug_lock_release(next, write2);
	} else {
		labbug_lock_keep();
	}
	atomic_dec(&lock->holders);
	labbug_lock_release(lock, write);
	return len;
}

static ssize_t labbug_lock_read(struct file *file, char __user *ubuf,
				size_t len, loff_t *ppos)
{
	char text[512];
	size_t i;
	int n = 0;

	for (i = 0; i < ARRAY_SIZE(labbug_locks); i++)
		n += scnprintf(text + n, sizeof(text) - n, "%s holders=%d waiting=%d\n",
			       labbug_locks[i].name, atomic_read(&labbug_locks[i].holders),
			       atomic_read(&labbug_locks[i].waiting));
	return simple_read_from_buffer(ubuf, len, ppos, text, n);
}

static const struct proc_ops labbug_lock_ops = {
	.proc_read = labbug_lock_read,
	.proc_write = labbug_lock_write,
};

static const struct proc_ops labbug_trigger_ops = {
	.proc_write = labbug_trigger_write,
};

static const struct proc_ops labbug_hold_ops = {
	.proc_write = labbug_hold_write,
};

static const struct proc_ops labbug_wait_ops = {
	.proc_write = labbug_wait_write,
};

static const struct proc_ops labbug_irq_ops = {
	.proc_write = labbug_irq_write,
};

static int __init labbug_init(void)
{
	labbug_dev = kzalloc(sizeof(*labbug_dev), GFP_KERNEL);
	if (!labbug_dev)
		return -ENOMEM;
	labbug_dev->name = "labbug0";
	labbug_dev->magic = 0x1abb06;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
	/* v6.13 added hrtimer_setup() (commit 9779489a31d7); v6.15 removed hrtimer_init(). */
	hrtimer_setup(&labbug_timer, labbug_timer_fn, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
#else
	hrtimer_init(&labbug_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
	labbug_timer.function = labbug_timer_fn;
#endif

	labbug_dir = proc_mkdir("labbug", NULL);
	if (!labbug_dir ||
	    !proc_create("trigger", 0200, labbug_dir, &labbug_trigger_ops) ||
	    !proc_create("hold", 0200, labbug_dir, &labbug_hold_ops) ||
	    !proc_create("wait", 0200, labbug_dir, &labbug_wait_ops) ||
	    !proc_create("irq", 0200, labbug_dir, &labbug_irq_ops) ||
	    !proc_create("lock", 0600, labbug_dir, &labbug_lock_ops)) {
		proc_remove(labbug_dir);
		kfree(labbug_dev);
		return -ENOMEM;
	}
	pr_info("labbug: loaded, device %s at %px\n", labbug_dev->name, labbug_dev);
	return 0;
}

static void __exit labbug_exit(void)
{
	hrtimer_cancel(&labbug_timer);
	proc_remove(labbug_dir);
	kfree(labbug_dev);
}

module_init(labbug_init);
module_exit(labbug_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Deliberately buggy module for vmcore-dap sample dumps");
