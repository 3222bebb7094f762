#!/usr/bin/env bash
# Run the enforcement check inside a qemu (TCG) guest booted on Debian's stock kernel, which,
# unlike this project's VMs, allows BPF-LSM: there a denied exec must be refused with EPERM.
# Usage: tests/qemu/lsm.sh PATH/TO/enforce_check   (root; needs qemu-system-x86, cpio,
# busybox-static; downloads the kernel package once into target/qemu/).
set -euo pipefail
check_bin=$(realpath "$1")
top=$(cd "$(dirname "$0")/../.." && pwd)
work="$top/target/qemu"
mkdir -p "$work"
cd "$work"

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
if ! ls "$work"/kernel/boot/vmlinuz-* >/dev/null 2>&1; then
  rm -rf kernel ./*.deb
  apt-get download "$pkg" >/dev/null 2>&1 || { apt-get update -qq; apt-get download "$pkg"; }
  dpkg-deb -x ./*.deb kernel
fi
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-* | head -n1)

rm -rf initramfs && mkdir -p initramfs/{bin,dev,proc,sys,tmp,lib,lib64,usr}
cp /bin/busybox initramfs/bin/busybox
for a in sh sleep true mount poweroff cat echo ip mkdir; do ln -sf busybox "initramfs/bin/$a"; done
cp "$check_bin" initramfs/bin/enforce_check
# The check binary's shared libraries, at the paths the dynamic loader expects.
for lib in $(ldd "$check_bin" | grep -o '/[^ ]*'); do
  mkdir -p "initramfs$(dirname "$lib")"
  cp -L "$lib" "initramfs$lib"
done
cat > initramfs/init <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup
echo "guest kernel: $(cat /proc/version)"
echo "lsm: $(cat /sys/kernel/security/lsm 2>/dev/null || echo '?')"
TMPDIR=/tmp /bin/enforce_check --expect bpf_lsm
echo "ENFORCE-CHECK EXIT $?"
poweroff -f
INIT
chmod +x initramfs/init
(cd initramfs && find . | cpio -o -H newc 2>/dev/null | gzip -1) > initrd.gz

log="$work/console.log"
timeout 600 qemu-system-x86_64 -accel tcg -smp 2 -m 2048 -kernel "$vmlinuz" -initrd initrd.gz \
  -append "console=ttyS0 quiet panic=-1" -nographic -no-reboot -serial mon:stdio \
  </dev/null >"$log" 2>&1 || true
grep -a -E "guest kernel|^lsm:|ENFORCE-CHECK" "$log" || true
grep -a -q "ENFORCE-CHECK PASS" "$log"
