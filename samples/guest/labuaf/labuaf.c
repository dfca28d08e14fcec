// SPDX-License-Identifier: GPL-2.0
/*
 * labuaf - a module whose request list is corrupted, for vmcore-dap's list-uaf sample.
 *
 * It keeps every request on three structures at once, as drivers do: a list (submission order),
 * an rbtree (by id) and an xarray (id -> request), and counts submissions in a per-CPU counter.
 * Two bugs, each the classic kind:
 *
 *   - a request is freed while still linked (removed from the tree and the xarray, but list_del()
 *     forgotten): a use-after-free waiting for the next walk;
 *   - another is unlinked by hand, half-way (prev->next is updated, next->prev is not), then freed:
 *     the list is corrupted at the following node.
 *
 * The walk that follows (labuaf_walk) dereferences the freed request's data pointer, which its
 * destructor set to NULL: "BUG: kernel NULL pointer dereference" at the LABUAF-FAULT marker.
 *
 * A second list, of replies, is long (thousands of entries, none printed one by one): the list a
 * debugger must show a page at a time. A reply has the same size and link offset as a request, so
 * from the slab object alone either list's entries could be either type ("View entries as…").
 *
 * Driven through /proc/labuaf/submit ("submit <n>": n requests from the writer's CPU; "reply <n>":
 * n replies) and /proc/labuaf/bug ("bug <freed-id> <half-id>": the two bugs, then the walk). Every
 * fact the sample builder needs is printed with a "labuaf:" prefix. Builds on every kernel of the
 * samples' matrix (5.10 .. 7.x, x86-64 and arm64): list, rbtree, xarray, per-CPU and proc_ops
 * (v5.6) APIs only.
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/slab.h>
#include <linux/list.h>
#include <linux/rbtree.h>
#include <linux/xarray.h>
#include <linux/percpu.h>
#include <linux/mutex.h>
#include <linux/sched.h>

#define LABUAF_MSGLEN 32
#define LABUAF_REQ_MAGIC 0x1abfa11UL

/* 96 bytes: kmalloc-96 (kmalloc-128 where there is none). */
struct labuaf_req {
	unsigned long magic;
	struct list_head node;		/* on labuaf_dev.reqs, in submission order */
	int id;
	int cpu;
	const int *data;		/* NULL once the request is destroyed */
	struct rb_node rb;		/* on labuaf_dev.by_id */
	int value;
	char tag[20];
};

/*
 * Another struct of the same module with a list_head at the same offset that fits the same kmalloc
 * cache: from the slab object alone, a list's entries could be either ("View entries as…").
 * 96 bytes.
 */
struct labuaf_reply {
	unsigned long cookie;
	struct list_head link;
	int id;
	int status;
	char text[64];
};

struct labuaf_dev {
	const char *name;
	struct list_head reqs;
	struct rb_root by_id;
	struct xarray xa;
	struct list_head replies;	/* the long list: thousands of replies */
	int count;
	int nr_replies;
};

static struct labuaf_dev labuaf_dev = {
	.name = "labuaf0",
	.reqs = LIST_HEAD_INIT(labuaf_dev.reqs),
	.by_id = RB_ROOT,
	.xa = XARRAY_INIT(labuaf_dev.xa, 0),
	.replies = LIST_HEAD_INIT(labuaf_dev.replies),
};
static DEFINE_PER_CPU(unsigned long, labuaf_hits);
static DEFINE_MUTEX(labuaf_mutex);
static struct proc_dir_entry *labuaf_dir;
static const int labuaf_values[4] = { 3, 5, 7, 11 };

static void labuaf_tree_insert(struct labuaf_req *req)
{
	struct rb_node **link = &labuaf_dev.by_id.rb_node, *parent = NULL;

	while (*link) {
		struct labuaf_req *other = rb_entry(*link, struct labuaf_req, rb);

		parent = *link;
		link = req->id < other->id ? &(*link)->rb_left : &(*link)->rb_right;
	}
	rb_link_node(&req->rb, parent, link);
	rb_insert_color(&req->rb, &labuaf_dev.by_id);
}

static int labuaf_submit(int n)
{
	int i, cpu;

	for (i = 0; i < n; i++) {
		struct labuaf_req *req = kzalloc(sizeof(*req), GFP_KERNEL);

		if (!req)
			return -ENOMEM;
		cpu = get_cpu();
		req->magic = LABUAF_REQ_MAGIC;
		req->id = labuaf_dev.count++;
		req->cpu = cpu;
		req->data = &labuaf_values[req->id % 4];
		req->value = req->id * 10;
		snprintf(req->tag, sizeof(req->tag), "req-%d", req->id);
		list_add_tail(&req->node, &labuaf_dev.reqs);
		labuaf_tree_insert(req);
		xa_store(&labuaf_dev.xa, req->id, req, GFP_ATOMIC);
		this_cpu_inc(labuaf_hits);
		put_cpu();
		pr_info("labuaf: req id=%d cpu=%d addr=%px\n", req->id, cpu, req);
	}
	pr_info("labuaf: hits cpu=%d total=%lu\n", cpu, per_cpu(labuaf_hits, cpu));
	return 0;
}

static int labuaf_reply(int n)
{
	struct labuaf_reply *reply, *first = NULL;
	int i;

	for (i = 0; i < n; i++) {
		reply = kzalloc(sizeof(*reply), GFP_KERNEL);
		if (!reply)
			return -ENOMEM;
		reply->cookie = LABUAF_REQ_MAGIC ^ labuaf_dev.nr_replies;
		reply->id = labuaf_dev.nr_replies++;
		reply->status = reply->id % 7;
		snprintf(reply->text, sizeof(reply->text), "reply-%d", reply->id);
		list_add_tail(&reply->link, &labuaf_dev.replies);
		if (!first)
			first = reply;
	}
	pr_info("labuaf: replies n=%d total=%d first=%px last=%px\n", n, labuaf_dev.nr_replies, first,
		list_last_entry(&labuaf_dev.replies, struct labuaf_reply, link));
	return 0;
}

static struct labuaf_req *labuaf_find(int id)
{
	return xa_load(&labuaf_dev.xa, id);
}

/* The destructor: the data pointer is cleared, the request leaves the tree and the xarray. */
static void labuaf_destroy(struct labuaf_req *req)
{
	req->data = NULL;
	rb_erase(&req->rb, &labuaf_dev.by_id);
	xa_erase(&labuaf_dev.xa, req->id);
	kfree(req);
}

/*
 * The device is an argument, as a driver's functions take it: it stays in a register for the whole
 * walk (the loop compares each node with &dev->reqs), so the crashed frame shows it and, through
 * it, the list. noipa: no clone of this function with the one device folded in.
 */
static noinline __attribute__((__noipa__)) int labuaf_walk(struct labuaf_dev *dev)
{
	struct labuaf_req *req;
	/*
	 * Readable in the dump, in this order: the loop keeps only the next node in a register, so
	 * the request being read lives in the volatile cur, counted by seen before it is read.
	 */
	struct labuaf_req *volatile cur = NULL;
	volatile int total = 0;
	volatile int seen = 0;

	list_for_each_entry(req, &dev->reqs, node) {
		seen++;
		cur = req;
		total += *cur->data;	/* LABUAF-FAULT */
	}
	pr_info("labuaf: walked %d requests, total %d\n", seen, total);
	return total;
}

static int labuaf_bugs(int freed_id, int half_id)
{
	struct labuaf_req *freed = labuaf_find(freed_id), *half = labuaf_find(half_id);

	if (!freed || !half || freed == half)
		return -EINVAL;
	/* Bug 1: freed while still on the list (list_del forgotten). */
	pr_info("labuaf: freed-linked id=%d addr=%px\n", freed->id, freed);
	labuaf_destroy(freed);
	/* Bug 2: unlinked by hand, half-way (next->prev still points at it), then freed. */
	pr_info("labuaf: half-unlinked id=%d addr=%px next=%px\n", half->id, half,
		list_entry(half->node.next, struct labuaf_req, node));
	half->node.prev->next = half->node.next;
	labuaf_destroy(half);
	pr_info("labuaf: walk pid=%d comm=%s cpu=%d\n", task_pid_nr(current), current->comm,
		raw_smp_processor_id());
	return labuaf_walk(&labuaf_dev);
}

static ssize_t labuaf_submit_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char msg[LABUAF_MSGLEN] = {};
	int n, ret;

	if (copy_from_user(msg, ubuf, min(len, sizeof(msg) - 1)))
		return -EFAULT;
	mutex_lock(&labuaf_mutex);
	if (sscanf(msg, "submit %d", &n) == 1 && n > 0 && n <= 10000)
		ret = labuaf_submit(n);
	else if (sscanf(msg, "reply %d", &n) == 1 && n > 0 && n <= 100000)
		ret = labuaf_reply(n);
	else
		ret = -EINVAL;
	mutex_unlock(&labuaf_mutex);
	return ret < 0 ? ret : len;
}

static ssize_t labuaf_bug_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char msg[LABUAF_MSGLEN] = {};
	int freed_id, half_id, ret;

	if (copy_from_user(msg, ubuf, min(len, sizeof(msg) - 1)))
		return -EFAULT;
	if (sscanf(msg, "bug %d %d", &freed_id, &half_id) != 2)
		return -EINVAL;
	mutex_lock(&labuaf_mutex);
	ret = labuaf_bugs(freed_id, half_id);
	mutex_unlock(&labuaf_mutex);
	return ret < 0 ? ret : len;
}

static const struct proc_ops labuaf_submit_ops = {
	.proc_write = labuaf_submit_write,
};

static const struct proc_ops labuaf_bug_ops = {
	.proc_write = labuaf_bug_write,
};

static int __init labuaf_init(void)
{
	labuaf_dir = proc_mkdir("labuaf", NULL);
	if (!labuaf_dir ||
	    !proc_create("submit", 0200, labuaf_dir, &labuaf_submit_ops) ||
	    !proc_create("bug", 0200, labuaf_dir, &labuaf_bug_ops)) {
		proc_remove(labuaf_dir);
		return -ENOMEM;
	}
	pr_info("labuaf: loaded name=%s dev=%px reqs=%px by_id=%px xa=%px replies=%px req_size=%zu reply_size=%zu\n",
		labuaf_dev.name, &labuaf_dev, &labuaf_dev.reqs, &labuaf_dev.by_id, &labuaf_dev.xa,
		&labuaf_dev.replies, sizeof(struct labuaf_req), sizeof(struct labuaf_reply));
	return 0;
}

static void __exit labuaf_exit(void)
{
	proc_remove(labuaf_dir);	/* the requests leak: the module never unloads in the sample */
}

module_init(labuaf_init);
module_exit(labuaf_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("A request list with a use-after-free, for vmcore-dap's list-uaf sample");
