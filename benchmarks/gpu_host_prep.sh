# Unpacks, on a bare lent GPU host, the parts `python -m benchmarks.gpu_carry` makes, one call
# at a time: each call carries a few parts in .gpu/ and runs `sh benchmarks/gpu_host_prep.sh`
# from the repository root; parts from earlier calls stay in $R/stage while the host is warm.
# Triton lands in $R/tri, Python packages in $R/site (first on every sys.path, the Python
# backend's stub included: it ignores PYTHONPATH), the tts model in $R/repo once the packed
# voice (`gpu_graphs.py --pack`, voice16.onnx) and voice.onnx.json have come.
set -e
R=${R:-/tmp}
PY=${PY:-python3}
mkdir -p $R/stage $R/site $R/tri $R/repo/tts/1
cp .gpu/* $R/stage/ 2>/dev/null || true
cd $R/stage
for part in *.tar.xz; do
  [ -e "$part" ] || continue
  [ -e "$part.done" ] && continue
  case $part in triton*) into=$R/tri ;; *) into=$R/site ;; esac
  $PY -c "import tarfile,sys;tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$part" "$into"
  touch "$part.done"
done
for part in cuda*.so.xz; do  # the CUDA provider, cut to one GPU generation (gpu_carry --arch)
  [ -e "$part" ] || continue
  [ -e "$part.done" ] && continue
  $PY -c "import lzma,shutil,sys;shutil.copyfileobj(lzma.open(sys.argv[1]),open(sys.argv[2],'wb'))" "$part" "${part%.xz}"
  touch "$part.done"
done
for provider in cuda*.so; do
  [ -e "$provider" ] && [ -d $R/site/onnxruntime/capi ] && cp "$provider" $R/site/onnxruntime/capi/libonnxruntime_providers_cuda.so
done
cd - >/dev/null
if [ -e $R/stage/voice16.onnx ]; then
  cp model_repository/tts/config.pbtxt $R/repo/tts/
  cp -r model_repository/tts/configs $R/repo/tts/
  cp model_repository/tts/1/*.py $R/stage/voice.onnx.json $R/repo/tts/1/
  cp model_repository/graph_runners.py $R/repo/
  $PY -c "import sys,onnx;sys.path.insert(0,'benchmarks');import gpu_graphs as g;onnx.save(g.widen(onnx.load(sys.argv[1])),sys.argv[2])" $R/stage/voice16.onnx $R/repo/tts/1/voice.onnx
fi
for wheel in $R/stage/*.whl; do
  [ -e "$wheel" ] && $PY -m pip install -q --no-index --no-deps --target $R/site "$wheel"
done
ls $R/stage $R/site $R/repo/tts/1
echo "import sys; sys.path.insert(0, '$R/site')" > $($PY -c "import site;print(site.getsitepackages()[0])")/000_carried.pth
