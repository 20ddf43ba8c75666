#!/bin/sh
# Builds the kernel-lane initramfs: busybox, the network modules (with their dependencies, in
# load order), and the guest test binary with the shared libraries it needs.
# Usage: mkinitramfs.sh <kernel version> <guest binary> <output .cpio.gz> <work dir>
set -eu
kver=$1 guest=$2 out=$3 work=$4
root=$work/root
mods=/lib/modules/$kver
rm -rf "$root"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/mods"
cp /bin/busybox "$root/bin/busybox"

# Modules by name; their dependencies come first (modules.dep lists them).
wanted="veth ifb sch_netem sch_tbf sch_htb sch_ingress cls_u32 act_mirred act_gact \
        nf_tables nft_numgen nft_queue nft_compat nfnetlink_queue xt_NFQUEUE"
order=$work/order
: > "$order"
add() {  # add <path relative to $mods>
  grep -qx "$1" "$order" && return 0
  for dep in $(grep "^$1:" "$mods/modules.dep" | cut -d: -f2); do add "$dep"; done
  echo "$1" >> "$order"
}
for m in $wanted; do
  path=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$mods/modules.dep" | cut -d: -f1 | head -1)
  if [ -z "$path" ]; then echo "module $m not found" >&2; exit 1; fi
  add "$path"
done
i=0
while read -r path; do
  i=$((i + 1))
  name=$(printf '%02d-%s' "$i" "$(basename "$path" | sed 's/\.ko.*/.ko/')")
  case "$path" in
    *.xz) xz -dc "$mods/$path" > "$root/mods/$name" ;;
    *.zst) zstd -qdc "$mods/$path" > "$root/mods/$name" ;;
    *) cp "$mods/$path" "$root/mods/$name" ;;
  esac
done < "$order"

# The guest and every shared library it loads, at the same paths.
cp "$guest" "$root/guest"
for lib in $(ldd "$guest" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in /mods/*.ko; do insmod "$m" || echo "FLNET-MODULE-FAILED $m"; done
echo "FLNET-BOOTED $(uname -r)"
/guest --gtest_color=no
echo "FLNET-RESULT rc=$?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
