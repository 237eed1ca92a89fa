#!/usr/bin/env bash
# it_codec_train.sh - low-precision communication end to end under mpirun: an int8 + RHT uplink
# moves at most 0.27x the bytes of float32 and trains as well (within 2 points on this short
# run; bench/codec_train compares the full quickstart); quantised downlink deltas keep
# the workers' replicas on track; one process and MPI stay bit-identical with codecs; and
# examples/quickstart_int8 is the quickstart with only the uplink changed.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
q=(--set logging.progress=QUIET --set schedule.eval_every=0)

run() { # name launcher... -- trainer arguments
  local name=$1
  shift
  local launch=()
  while [ "$1" != -- ]; do launch+=("$1"); shift; done
  shift
  "${launch[@]}" "$TRAINER" "${q[@]}" --set run.name="$name" "$@" "$EX/tiny.pb" >"$name.log" 2>&1 \
    || { cat "$name.log"; fail "$name failed"; }
}
done_num() { grep '"event":"done"' "runs/$1/metrics.jsonl" | grep -o "\"$2\":[-0-9.eE+]*" | cut -d: -f2; }

run fp32 timeout -k 10 300 mpirun -np 4 --
run int8 timeout -k 10 300 mpirun -np 4 -- --set compression.uplink=INT8
run int8_local env -- --set compression.uplink=INT8
run int8_delta timeout -k 10 300 mpirun -np 4 -- --set compression.uplink=INT8 --set compression.downlink=INT8
run int8_delta_local env -- --set compression.uplink=INT8 --set compression.downlink=INT8
run fp8_ef timeout -k 10 300 mpirun -np 4 -- --set compression.uplink=FP8_E4M3 --set compression.error_feedback=true

up32=$(done_num fp32 bytes_up_total) up8=$(done_num int8 bytes_up_total)
ratio=$(awk -v a="$up8" -v b="$up32" 'BEGIN { printf "%.4f", a / b }')
ge 0.27 "$ratio" || fail "int8 uplink moves $ratio of the float32 bytes (> 0.27)"
grep -q "uplink int8+rht/256" int8.log || fail "the start-up lines do not show the uplink codec"
echo "ok: int8+RHT uplink bytes = $ratio x float32"
a32=$(done_num fp32 test_acc) a8=$(done_num int8 test_acc) ad=$(done_num int8_delta test_acc) ae=$(done_num fp8_ef test_acc)
for a in "$a8" "$ad" "$ae"; do
  ge "$a" "$(awk -v x="$a32" 'BEGIN { print x - 0.02 }')" || fail "accuracy $a vs float32 $a32 (more than 2 points lower)"
done
echo "ok: test_acc float32 $a32, int8 uplink $a8, + int8 downlink deltas $ad, fp8 + error feedback $ae"
down32=$(done_num fp32 bytes_down_total) down8=$(done_num int8_delta bytes_down_total)
ge 0.27 "$(awk -v a="$down8" -v b="$down32" 'BEGIN { print a / b }')" || fail "downlink deltas $down8 vs $down32 bytes"
echo "ok: int8 downlink deltas move $(awk -v a="$down8" -v b="$down32" 'BEGIN { printf "%.3f", a / b }') x the float32 parameter bytes"
cmp runs/int8/params.npy runs/int8_local/params.npy || fail "int8: one process and MPI differ"
cmp runs/int8_delta/params.npy runs/int8_delta_local/params.npy || fail "int8 deltas: one process and MPI differ"
echo "ok: one process == MPI with codecs"

# quickstart_int8 differs from quickstart only in the compression section and the run name
"$TRAINER" --print-config "$EX/quickstart.pb" | grep -v '^  name:' | sed '/^compression {/,/^}/d' >qs.txt
"$TRAINER" --print-config "$EX/quickstart_int8.pb" | grep -v '^  name:' | sed '/^compression {/,/^}/d' >qs8.txt
diff qs.txt qs8.txt || fail "quickstart_int8 is not the quickstart with another uplink"
printed=$("$TRAINER" --print-config "$EX/quickstart_int8.pb") # whole: grep -q would cut it short
grep -q "uplink: INT8" <<<"$printed" || fail "quickstart_int8 has no int8 uplink"
echo "ok: quickstart_int8 = quickstart + int8 uplink"

# bad compression settings are refused at load time
expect_exit 2 "compression.block_size = 96" "$TRAINER" --set compression.uplink=INT8 --set compression.block_size=96 "$EX/tiny.pb"
expect_exit 2 "compression.error_feedback = true needs a compressed uplink" "$TRAINER" --set compression.error_feedback=true "$EX/tiny.pb"
echo "PASS"
