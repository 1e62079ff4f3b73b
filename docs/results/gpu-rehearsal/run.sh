set -x
cd /work && rm -rf camp-clone1 camp-clone2
git clone -q main camp-clone1 && cd camp-clone1 && git log --oneline | head -1
time PYTHON=/work/main/.venv/bin/python bash tools/gpu_campaign.sh --rehearse --quiet; echo "rc=$?"
cd /work && git clone -q main camp-src2 && cd camp-src2 && PYTHON=/work/main/.venv/bin/python bash tools/gpu_campaign.sh --pack >/dev/null 2>&1; echo "pack rc=$?"
# the device's copy: the working tree without .git, with .carry beside it
mkdir /work/camp-clone2 && git ls-files | tar cf - -T - | tar xf - -C /work/camp-clone2 && cp -r .carry /work/camp-clone2/ && cd /work/camp-clone2 && rm -rf /tmp/site
time PYTHON=/work/gpuver/bin/python bash tools/gpu_campaign.sh --rehearse --quiet; echo "rc=$?"
rm -rf /work/camp-src2
