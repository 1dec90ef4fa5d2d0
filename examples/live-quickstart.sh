#!/usr/bin/env bash
# The live broker in one go, on 127.0.0.1: serve, enrol two sites, start their agents, submit
# jobs (with curl, and with `carbonfed submit`, which takes hours on a GPU type), plan, and read
# where the jobs ran, the summary and the ledger. At the broker's default carbon price
# (100 USD/t) south's jobs move to north's clean grid, although south's power is cheaper.
#   bash examples/live-quickstart.sh            (PORT=8765 and WORK=a temporary folder by default)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${PORT:-8765}"
work="${WORK:-$(mktemp -d)}"
broker="http://127.0.0.1:${port}"
export CARBONFED_ADMIN_TOKEN="${CARBONFED_ADMIN_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')}"
auth=(-H "Authorization: Bearer ${CARBONFED_ADMIN_TOKEN}")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

carbonfed serve --db "${work}/broker.db" --port "${port}" --time-scale 3600 \
    --plan-interval-s 2 > "${work}/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "${broker}/v1/health" > /dev/null && break; sleep 0.1; done

for site in north south; do
  cp "${here}/agents/${site}.yaml" "${work}/"
  zone=$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['site']['zone'])" "${work}/${site}.yaml")
  gpus=$(python3 -c "import yaml,sys; g=yaml.safe_load(open(sys.argv[1]))['site']['gpus']; print(','.join(f'{k}={v}' for k,v in g.items()))" "${work}/${site}.yaml")
  token=$(carbonfed admin --broker "${broker}" enrol "${site}" --zone "${zone}" --gpus "${gpus}" \
      | sed -n 's/^enrolment token (one time; shown once): //p')
  carbonfed agent "${work}/${site}.yaml" --broker "${broker}" --enrolment-token="${token}" \
      > "${work}/${site}.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  [ "$(curl -sf "${auth[@]}" "${broker}/v1/sites" | python3 -c 'import json,sys; print(sum(s["status"]=="active" for s in json.load(sys.stdin)))')" = 2 ] && break
  sleep 0.2
done

# three 1-hour jobs on a V100, from south's dirty grid: one with curl (work in training steps:
# 1 h x 3600 s x 4.3948 steps/s, resnet50 on one V100), two with carbonfed submit (job-2, job-3)
curl -sf "${auth[@]}" -H 'Content-Type: application/json' -X POST "${broker}/v1/jobs" \
    -d '{"id": "job-1", "home_site": "south", "job_type": "resnet50", "gpus": 1, "work_steps": 15821.2}' > /dev/null
for n in 2 3; do
  carbonfed submit "job-${n}" --home south --job-type resnet50 --hours 1 --on V100 \
      --broker "${broker}"
done
curl -sf "${auth[@]}" -X POST "${broker}/v1/plans" > /dev/null
for _ in $(seq 150); do
  done_jobs=$(curl -sf "${auth[@]}" "${broker}/v1/summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"].get("completed", 0))')
  [ "${done_jobs}" = 3 ] && break
  sleep 0.2
done
echo "placements:"
curl -sf "${auth[@]}" "${broker}/v1/jobs" | python3 -c 'import json,sys
for j in json.load(sys.stdin): print("  %s: home %s, ran at %s" % (j["id"], j["home_site"], j["site_id"]))'
echo "summary:"; curl -sf "${auth[@]}" "${broker}/v1/summary"; echo
echo "ledger:";  curl -sf "${auth[@]}" "${broker}/v1/ledger"; echo
