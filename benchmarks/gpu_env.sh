# Sourced by the GPU scripts of benchmarks/: installs the wheels carried in .whl/ (packages the GPU machine lacks,
# such as pywavelets) into /tmp/site once, and puts them and the repository on PYTHONPATH.
if compgen -G ".whl/*.whl" > /dev/null; then
  if [ ! -f /tmp/site/.installed ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && touch /tmp/site/.installed
  fi
  export PYTHONPATH=/tmp/site:.
else
  export PYTHONPATH=.
fi
export PYTHONUNBUFFERED=1
