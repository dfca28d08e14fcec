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

oops_null() {
	insmod /lib/modules/labbug.ko || finish failed "insmod labbug.ko"
	labthreads &
	sleep 1
	labtool hold &
	sleep 2
	for i in 1 2 3; do
		labtool wait &
	done
	start_sleepers 200
	labtool spin 1 &
	sleep 3
	fact "ready tasks=$(count_tasks)"
	labtool crash 0 "walk 7"
}

irq_oops() {
	# The hrtimer interrupt of labbug's /proc/labbug/irq faults on CPU 1 while labirq spins
	# in the kernel there (labbug_irq_wait); labspin keeps CPU 0 busy in user mode.
	insmod /lib/modules/labbug.ko || finish failed "insmod labbug.ko"
	start_sleepers 100
	labtool spin 0 &
	sleep 3
	fact "ready tasks=$(count_tasks)"
	labtool irq 1 "irq 5"
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

mutex_waiters() {
	# labhold takes labbug_mutex and keeps it; $1 labwait tasks block on it (D state).
	insmod /lib/modules/labbug.ko || finish failed "insmod labbug.ko"
	labtool hold &
	sleep 2
	i=0
	while [ $i -lt "$1" ]; do
		labtool wait &
		i=$((i + 1))
	done
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
	labthreads &
	sleep 1
	mutex_waiters 3
	start_sleepers 200
	labtool spin 1 &
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
*) finish failed "unknown scenario '$labscenario'" ;;
esac
sleep 10
finish failed "the kernel did not crash"
