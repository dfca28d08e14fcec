#!/bin/sh
# /init of the sample guest, for both kernels:
#  - the crashing kernel: arms kdump (kexec -p), sets up the scenario's tasks,
#    reports what it started as "LABFACT ..." lines in the kernel log, crashes
#    (no-panic: prints "LABDUMP status=host-dump" and waits for the host to dump it);
#  - the kdump capture kernel (it has /proc/vmcore): saves the dump with
#    makedumpfile onto the ext4 disk /dev/vda and powers off.
# The host writes the scenario to /etc/lab/scenario, the capture kernel's
# command line to /boot/capture.cmdline and how to dump to /etc/lab/dump:
#   level=N   makedumpfile -d N for vmcore and vmcore.elf (kdump-tools' default is 31)
#   lossy=1   also vmcore-d31 (-c -d 31), for kernels whose makedumpfile drops pages at -d 31
#   raw=1     makedumpfile cannot read this kernel: copy /proc/vmcore, as kdump-tools does
#   kdump=0   do not arm kdump: the host dumps the panicked guest (QEMU dump-guest-memory)
export PATH=/bin:/sbin
# Another architecture's busybox: the host could not list its applets, so link them here.
[ -e /bin/mount ] || /bin/busybox --install -s /bin
level=31 lossy=0 raw=0 kdump=1
. /etc/lab/dump

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fact() { echo "LABFACT $*" > /dev/kmsg; }
say() { echo "[guest] $*"; }
finish() {
	echo "LABDUMP status=$1${2:+ reason=$2}"
	sync
	poweroff -f
	sleep 60
}

load_modules() {
	# Host-computed dependency order (modules.dep) of the modules in /lib/modules/${1:-boot}.
	while read -r m; do
		insmod "/lib/modules/${1:-boot}/$m" || finish failed "insmod $m"
	done < "/lib/modules/${1:-boot}/load-order"
}

wait_for_disk() {
	n=0
	while [ ! -b /dev/vda ]; do
		n=$((n + 1))
		[ $n -gt 300 ] && finish failed "no /dev/vda after 30s"
		usleep 100000
	done
}

capture() {
	say "capture kernel: saving /proc/vmcore"
	load_modules
	wait_for_disk
	mkdir -p /out
	mount -t ext4 /dev/vda /out || finish failed "cannot mount /dev/vda"
	if [ "$raw" = 1 ]; then
		# kdump-tools: when makedumpfile fails, keep /proc/vmcore as it is (an ELF file).
		if makedumpfile --message-level 30 -c -d 31 /proc/vmcore /out/vmcore 2> /out/makedumpfile.err; then
			finish failed "makedumpfile worked on a kernel the builder says it cannot read"
		fi
		cat /out/makedumpfile.err
		rm -f /out/vmcore
		cp /proc/vmcore /out/vmcore || finish failed "cp /proc/vmcore"
	else
		makedumpfile --message-level 30 -c -d "$level" /proc/vmcore /out/vmcore \
			|| finish failed "makedumpfile -c"
		makedumpfile --message-level 30 -E -d "$level" /proc/vmcore /out/vmcore.elf \
			|| finish failed "makedumpfile -E"
		makedumpfile --message-level 30 --dump-dmesg /proc/vmcore /out/dmesg.txt \
			|| finish failed "makedumpfile --dump-dmesg"
	fi
	if [ "$lossy" = 1 ]; then
		makedumpfile --message-level 30 -c -d 31 /proc/vmcore /out/vmcore-d31 \
			|| finish failed "makedumpfile -c -d 31"
	fi
	echo ok > /out/status
	umount /out || finish failed "umount"
	finish ok
}

start_sleepers() {
	i=0
	while [ $i -lt "$1" ]; do
		sleep 100000 &
		i=$((i + 1))
	done
	fact "sleepers count=$1 comm=sleep"
}

count_tasks() {
	set -- /proc/[0-9]*/task/[0-9]*
	echo $#
}

# The scenario's tasks must be where its facts say before the crash, however slowly a TCG guest on
# a loaded host runs: a fixed sleep alone is a race the tests cannot control. settle TASK STATE waits
# (60 s at most) until /proc/TASK (a pid, or pid/task/tid) is in STATE (ps's letter, from its stat).
settle() {
	n=0
	until [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = "$2" ]; do
		n=$((n + 1))
		[ $n -gt 600 ] && finish failed "task $1 not in state $2 after 60s"
		usleep 100000
	done
}

# settle_threads PID COUNT STATE: the process has COUNT threads, each in STATE.
settle_threads() {
	n=0
	until [ "$(ls "/proc/$1/task" 2>/dev/null | wc -l)" -ge "$2" ]; do
		n=$((n + 1))
		[ $n -gt 600 ] && finish failed "pid $1 did not start $2 threads in 60s"
		usleep 100000
	done
	for t in /proc/"$1"/task/*; do
		settle "$1/task/${t##*/}" "$3"
	done
}

# await_log TEXT: the kernel log has a line with TEXT (a program or labbug saying it is set up).
await_log() {
	n=0
	until dmesg | grep -q "$1"; do
		n=$((n + 1))
		[ $n -gt 600 ] && finish failed "no '$1' in the kernel log after 60s"
		usleep 100000
	done
}

# start_labthreads: labthreads' five threads and its main thread, each blocked in its system call.
start_labthreads() {
	labthreads &
	settle_threads $! 6 S
}

# start_spinner CPU: labspin pinned to CPU and spinning (it reports itself after pinning).
start_spinner() {
	labtool spin "$1" &
	await_log "LABFACT spin pid=$! "
}

oops_null() {
	insmod /lib/modules/labbug.ko || finish failed "insmod labbug.ko"
	start_labthreads
	hold_and_wait 3
	start_sleepers 200
	start_spinner 1
	sleep 3
	fact "ready tasks=$(count_tasks)"
	labtool crash 0 "walk 7"
}

irq_oops() {
	# The hrtimer interrupt of labbug's /proc/labbug/irq faults on CPU 1 while labirq spins
	# in the kernel there (labbug_irq_wait); labspin keeps CPU 0 busy in user mode.
	insmod /lib/modules/labbug.ko || finish failed "insmod labbug.ko"
	start_sleepers 100
	start_spinner 0
	sleep 3
	fact "ready tasks=$(count_tasks)"
	labtool irq 1 "irq 5"
}

list_uaf() {
	# labuaf's requests: 12 submitted from CPU 0, 8 from CPU 1, and 5,000 replies (the long list);
	# then, from CPU 0, request 7 is freed while still linked, request 13 is unlinked half-way and
	# freed, and the walk of the list faults on request 7's cleared data pointer.
	insmod /lib/modules/labuaf.ko || finish failed "insmod labuaf.ko"
	taskset 1 sh -c 'echo submit 12 > /proc/labuaf/submit' || finish failed "labuaf submit on CPU 0"
	taskset 2 sh -c 'echo submit 8 > /proc/labuaf/submit' || finish failed "labuaf submit on CPU 1"
	echo reply 5000 > /proc/labuaf/submit || finish failed "labuaf reply"
	fact "ready tasks=$(count_tasks)"
	taskset 1 sh -c 'echo "LABFACT uaf pid=$$ comm=sh cpu=0" > /dev/kmsg; echo "bug 7 13" > /proc/labuaf/bug'
}

sysrq_crash() {
	taskset 1 sh -c 'echo "LABFACT sysrq pid=$$ comm=sh cpu=0" > /dev/kmsg; echo c > /proc/sysrq-trigger'
}

sysrq_c() {
	start_sleepers 300
	sleep 2
	fact "ready tasks=$(count_tasks)"
	sysrq_crash
}

hold_and_wait() {
	# labhold takes labbug_mutex and keeps it (labbug says so) before any of the $1 labwait tasks
	# starts, so which task gets the mutex first is decided; each waiter then blocks on it (D state).
	labtool hold &
	await_log "labbug: hold pid=$! "
	waiters=""
	i=0
	while [ $i -lt "$1" ]; do
		labtool wait &
		waiters="$waiters $!"
		i=$((i + 1))
	done
	for pid in $waiters; do
		await_log "labbug: wait pid=$pid comm=labwait blocking"
		settle "$pid" D
	done
}

mutex_waiters() {
	insmod /lib/modules/labbug.ko || finish failed "insmod labbug.ko"
	hold_and_wait "$1"
}

many_tasks() {
	# ~5,000 threads: raise the kernel's limits first, and report them.
	echo 20000 > /proc/sys/kernel/threads-max
	fact "limits threads_max=$(cat /proc/sys/kernel/threads-max) pid_max=$(cat /proc/sys/kernel/pid_max)"
	mutex_waiters 8
	labmany 5000 &
	n=0
	while [ ! -e /tmp/labmany.ready ]; do
		n=$((n + 1))
		[ $n -gt 1200 ] && finish failed "labmany did not start its threads in 120s"
		usleep 100000
	done
	sleep 2
	fact "ready tasks=$(count_tasks)"
	sysrq_crash
}

huge() {
	# ~50,000 tasks on 8 CPUs with memory in use (labhuge.c says what and how).
	# pid_max defaults to 32768 below 32 CPUs; a thread stack is 2 mappings (max_map_count).
	echo 150000 > /proc/sys/kernel/threads-max
	echo 131072 > /proc/sys/kernel/pid_max
	echo 262144 > /proc/sys/vm/max_map_count
	fact "limits threads_max=$(cat /proc/sys/kernel/threads-max) pid_max=$(cat /proc/sys/kernel/pid_max)"
	insmod /lib/modules/labbug.ko || finish failed "insmod labbug.ko"
	labhuge setup || finish failed "labhuge setup"
	labhuge spin || finish failed "labhuge spin"
	fact "ready tasks=$(count_tasks)"
	sysrq_crash
}

no_panic() {
	# Not crashed: the host stops the machine and dumps it with QEMU's dump-guest-memory.
	# qemu_fw_cfg gives QEMU's -device vmcoreinfo the kernel's VMCOREINFO.
	load_modules host-dump
	[ -e /sys/firmware/qemu_fw_cfg/by_name/etc/vmcoreinfo ] || finish failed "no etc/vmcoreinfo in fw_cfg"
	start_labthreads
	mutex_waiters 3
	start_sleepers 200
	start_spinner 1
	sleep 3
	fact "ready tasks=$(count_tasks)"
	echo "LABDUMP status=host-dump"
	sleep 100000
	finish failed "the host did not dump the guest"
}

if [ -e /proc/vmcore ]; then
	capture
fi

labscenario=$(cat /etc/lab/scenario)
say "crashing kernel: scenario '$labscenario'"
echo 1 > /proc/sys/kernel/panic_on_oops
echo 1 > /proc/sys/kernel/sysrq
if [ "$kdump" = 1 ]; then
	kexec -p /boot/vmlinuz --initrd=/boot/capture.img --append="$(cat /boot/capture.cmdline)" \
		|| finish failed "kexec -p"
	[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || finish failed "kdump not armed"
	fact "kdump armed"
else
	# Dumped by QEMU after the panic: qemu_fw_cfg gives -device vmcoreinfo the VMCOREINFO.
	load_modules host-dump
	[ -e /sys/firmware/qemu_fw_cfg/by_name/etc/vmcoreinfo ] || finish failed "no etc/vmcoreinfo in fw_cfg"
	fact "host dump after panic"
fi

case "$labscenario" in
oops-null) oops_null ;;
sysrq-c) sysrq_c ;;
many-tasks) many_tasks ;;
no-panic) no_panic ;;
irq-oops) irq_oops ;;
huge) huge ;;
list-uaf) list_uaf ;;
*) finish failed "unknown scenario '$labscenario'" ;;
esac
sleep 10
finish failed "the kernel did not crash"
