# Three more rounds of the batch-1 and batch-64 profiles of docs/results/deploy-mnist.md, back to
# back, keeping each round's profile.csv (run from the repository root, after the deploy-mnist run).
set -e
out=docs/results/deploy-mnist/repeat
for i in 1 2 3; do
  sorted-runner --quiet profile --run runs/deploy-mnist --batch-size 1 --compare-dense > /dev/null
  sorted-runner --quiet profile --run runs/deploy-mnist --batch-size 1 --compare-dense --weight-layout output-major > /dev/null
  cp runs/deploy-mnist/profile/cpu-b1/profile.csv "$out/cpu-b1-round$i.csv"
  cp runs/deploy-mnist/profile/cpu-b1-output-major/profile.csv "$out/cpu-b1-output-major-round$i.csv"
  sorted-runner --quiet profile --run runs/deploy-mnist --batch-size 64 --compare-dense > /dev/null
  cp runs/deploy-mnist/profile/cpu-b64/profile.csv "$out/cpu-b64-round$i.csv"
done
