"""The row alexnet_cifar_noaug+init=seed_v1+raw_pixels, from a learn.py run stopped by hand (SIGINT) in its 11th
chunk: learn.py writes a row only when netpipe train finishes, so this copies the CSV netpipe train had written
(saved from the run's scratch folder before stopping it) and computes the table's fields from it and the log."""
import csv
import json
import re

src = "/work/logs/noaug_seed_v1/artifacts/train/alexnet_cifar_noaug.csv"  # saved from /tmp/learn-alexnet_cifar_noaug-*
rows = list(csv.DictReader(open(src)))
log = open("docs/results/learn/logs/learn_queue8.log").read()
uses = re.search(r"training in (.*?): measured", log).group(1)
steps, batch = 100, 64  # the run's --steps and the recipe's batch
secs = sum(float(r["seconds"]) for r in rows)
name = "docs/results/learn/alexnet_cifar_noaug+init=seed_v1+raw_pixels"
open(f"{name}.csv", "w").write(open(src).read())
sets = (" --set 'nets.alexnet_cifar_noaug.options={lrn: both, dropout: 0.1, head: fc, batchnorm: false, init: seed_v1, "
        "pool_stride: 1}' --set 'nets.alexnet_cifar_noaug.normalize={mean: [0.0, 0.0, 0.0], std: [0.00392156862745098, "
        "0.00392156862745098, 0.00392156862745098]}'")
d = {"variant": "alexnet_cifar_noaug", "arch": "alexnet_cifar", "dataset": "cifar10",
     "epochs": len(rows), "steps_per_epoch": steps, "batch_size": batch,
     "train_seconds": round(secs, 3), "images_per_s": round(steps * batch * len(rows) / secs, 1),
     "amp_bf16": "bf16" in uses, "channels_last": "channels-last" in uses, "quick": True,
     "learn_command": "python docs/results/learn/learn.py alexnet_cifar_noaug --chunks 32 --steps 100 --val 500 "
                      "--measure-speed" + sets,
     "git_commit": "1e2af17",
     "note": ("experiment 1's own code: init seed_v1 on raw pixels (params.yaml at 1e2af17 had it; the command above "
              "sets it with today's params). Stopped by hand (SIGINT) in chunk 11 of 32, so the run wrote no summary: "
              "these are its 10 completed chunks (the CSV netpipe train wrote); the fields here are computed from "
              "that CSV and its log by logs/noaug_seed_v1_row.py.")}
open(f"{name}.json", "w").write(json.dumps(d, indent=1) + "\n")
