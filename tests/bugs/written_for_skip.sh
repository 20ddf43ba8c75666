#!/bin/sh
# `faultline reproduce ROW --etcd-version 3.4.23 --bug-check` on a row written for etcd >=3.5.0
# (tests/bugs/written_for_3_5.yaml) must exit 77 naming spec.cluster.etcdVersion, without a lab.
# Exit 77 here too (skipped) when 3.4.23 is not installed: then nothing can be judged.
faultline=$1 row=$2
out=$("$faultline" reproduce "$row" --etcd-version 3.4.23 --bug-check 2>&1)
rc=$?
echo "$out"
case $out in
  *"is not installed"* | *"not installed"*) exit 77 ;;
esac
if [ "$rc" -ne 77 ]; then
  echo "want exit 77 (skipped), got $rc"
  exit 1
fi
case $out in
  *"spec.cluster.etcdVersion"*"skipped"*) exit 0 ;;
esac
echo "the skip does not name spec.cluster.etcdVersion"
exit 1
