#!/bin/sh
# /init of the sample guest, for both kernels:
#  - the crashing kernel: arms kdump (kexec -p), sets up the scenario's tasks,
#    reports what it started as "LABFACT ..." lines in the kernel log, crashes;
#  - the kdump capture kernel (it has /proc/vmcore): saves the dump with
#    makedumpfile onto the ext4 disk /dev/vda and powers off.
# The host writes the scenario to /etc/lab/scenario and the capture kernel's
# command line to /boot/capture.cmdline.
export PATH=/bin:/sbin

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
	# Host-computed dependency order (modules.dep) of the block-device modules.
	while read -r m; do
		insmod "/lib/modules/boot/$m" || finish failed "insmod $m"
	done < /lib/modules/boot/load-order
}

capture() {
	say "capture kernel: saving /proc/vmcore"
	load_modules
	n=0
	while [ ! -b /dev/vda ]; do
		n=$((n + 1))
		[ $n -gt 300 ] && finish failed "no /dev/vda after 30s"
		usleep 100000
	done
	mkdir -p /out
	mount -t ext4 /dev/vda /out || finish failed "cannot mount /dev/vda"
	makedumpfile --message-level 30 -c -d 31 /proc/vmcore /out/vmcore \
		|| finish failed "makedumpfile -c"
	makedumpfile --message-level 30 -E -d 31 /proc/vmcore /out/vmcore.elf \
		|| finish failed "makedumpfile -E"
	makedumpfile --message-level 30 --dump-dmesg /proc/vmcore /out/dmesg.txt \
		|| finish failed "makedumpfile --dump-dmesg"
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

sysrq_c() {
	start_sleepers 300
	sleep 2
	fact "ready tasks=$(count_tasks)"
	taskset 1 sh -c 'echo "LABFACT sysrq pid=$$ comm=sh cpu=0" > /dev/kmsg; echo c > /proc/sysrq-trigger'
}

if [ -e /proc/vmcore ]; then
	capture
fi

labscenario=$(cat /etc/lab/scenario)
say "crashing kernel: scenario '$labscenario'"
echo 1 > /proc/sys/kernel/panic_on_oops
echo 1 > /proc/sys/kernel/sysrq
kexec -p /boot/vmlinuz --initrd=/boot/capture.img --append="$(cat /boot/capture.cmdline)" \
	|| finish failed "kexec -p"
[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || finish failed "kdump not armed"
fact "kdump armed"

case "$labscenario" in
oops-null) oops_null ;;
sysrq-c) sysrq_c ;;
*) finish failed "unknown scenario '$labscenario'" ;;
esac
sleep 10
finish failed "the kernel did not crash"
