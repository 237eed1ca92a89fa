#!/usr/bin/env bash
# it_models.sh - the deep models train on real data:
# - the CNN beats the MLP (784-256-256-10) on Fashion-MNIST after the same 300 steps of the same
#   run (examples/cnn.txtpb: 7 workers, batch 32, AdamW);
# - the character-level GPT learns the fortunes text: bits per character on held-out text fall
#   from log2(vocabulary) (a uniform guess) to well below it, and --sample prints text;
# - a missing fortunes directory is refused naming the Debian package; a GPT on images and a
#   CNN on text are refused naming both.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
q=(--set logging.progress=QUIET)

acc() { json_num "runs/$1/metrics.jsonl" test_acc; }
"$TRAINER" "${q[@]}" --set schedule.steps=300 --set run.name=cnn "$EX/cnn.pb" >cnn.log 2>&1 ||
  { cat cnn.log; fail "cnn run failed"; }
"$TRAINER" "${q[@]}" --set schedule.steps=300 --set run.name=mlp --set model.kind=MLP \
  --set model.hidden=256,256 "$EX/cnn.pb" >mlp.log 2>&1 || { cat mlp.log; fail "mlp run failed"; }
c=$(acc cnn) m=$(acc mlp)
ge "$c" "$m" && ! ge "$m" "$c" || fail "after 300 steps the CNN reaches $c, the MLP $m"
ge "$c" 0.85 || fail "the CNN reaches only $c"
echo "ok: after 300 steps the CNN reaches $c, the MLP $m"

gpt=(--set model.blocks=2 --set model.width=32 --set model.heads=2 --set model.context=32
  --set data.batch_size=8 --set data.test_limit=32 --set cluster.workers=2
  --set schedule.steps=150 --set schedule.eval_every=150 --set optimizer.lr=0.005
  --set optimizer.warmup_steps=10)
"$TRAINER" "${q[@]}" "${gpt[@]}" --set run.name=gpt --sample 200 "$EX/gpt_full.pb" >gpt.log 2>&1 ||
  { cat gpt.log; fail "gpt run failed"; }
bpc=$(json_num runs/gpt/metrics.jsonl bits_per_char)
vocab=$(json_num runs/gpt/metrics.jsonl classes)
uniform=$(awk -v v="$vocab" 'BEGIN { print log(v) / log(2) }')
ge 4.3 "$bpc" || fail "after 150 steps the GPT predicts at $bpc bits per character (uniform: $uniform)"
echo "ok: the GPT predicts held-out characters at $bpc bits each (a uniform guess over $vocab: $uniform)"
grep -q -- "---- 200 characters sampled from the final model ----" gpt.log || fail "no sample printed"
sample=$(sed -n '/characters sampled/,/^----$/p' gpt.log | sed '1d;$d' | tr -d '\n' | wc -c)
[ "$sample" -ge 150 ] || fail "the sample has $sample characters"
echo "ok: --sample 200 printed text"

expect_exit 2 "Debian package fortunes" "$TRAINER" "${gpt[@]}" --set data.path=/nonexistent "$EX/gpt_full.pb"
expect_exit 2 "model.kind = GPT reads windows" "$TRAINER" --set model.kind=GPT "$EX/tiny.pb"
expect_exit 2 "model.kind = CNN classifies images" "$TRAINER" "${gpt[@]}" --set model.kind=CNN "$EX/gpt_full.pb"
echo PASS
