#!/usr/bin/env bash
# Fuzz hearth on the stable toolchain: the libFuzzer targets in fuzz/ (libfuzzer-sys),
# instrumented with SanitizerCoverage through rustc's stable -C flags: what
# `cargo fuzz run --sanitizer none` does, without cargo-fuzz. Every target's entry
# point is in src/fuzzing.rs.
#
#   scripts/fuzz.sh                       # every target, 15 s each (the test tier's run)
#   scripts/fuzz.sh --seconds 3600 api_request
#   scripts/fuzz.sh --merge --seconds 600 # keep what found new coverage in fuzz/corpus
#                                         # (minimised: the smallest set covering it all)
#   scripts/fuzz.sh --quick               # built at opt-level 1: sooner built, slower run
#   scripts/fuzz.sh --list
#
# The kept corpus fuzz/corpus/<target>/ is read, not written (new inputs go to a
# scratch directory) unless --merge. An input that fails is saved as
# target/fuzz/artifacts/<target>/crash-<sha1> and the run fails: copy it into
# fuzz/regressions/<target>/, where `cargo test` runs it for good (src/fuzzing.rs),
# and fix the cause. Reproduce one with
#   target/fuzz/<triple>/release/<target> <file>   (or quick/, after --quick)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
seconds=15
merge=0
profile=release
list=0
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --merge) merge=1; shift ;;
        --quick) profile=quick; shift ;;
        --list) list=1; shift ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
all=()
for f in fuzz/fuzz_targets/*.rs; do
    all+=("$(basename "$f" .rs)")
done
if [[ $list -eq 1 ]]; then
    printf '%s\n' "${all[@]}"
    exit 0
fi
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")

# An explicit --target keeps RUSTFLAGS off build scripts and proc macros.
triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
cargo build --locked --profile "$profile" --manifest-path fuzz/Cargo.toml --target "$triple" \
    --target-dir "$repo/target/fuzz" $(printf -- '--bin %s ' "${targets[@]}")

scratch=$(mktemp -d "${TMPDIR:-/tmp}/hearth-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
    bin="$repo/target/fuzz/$triple/$profile/$t"
    artifacts="$repo/target/fuzz/artifacts/$t"
    mkdir -p "$artifacts" "$scratch/$t" "fuzz/corpus/$t"
    # The api targets' core writes under TMPDIR; keep it in the scratch directory.
    if TMPDIR=$scratch "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$scratch/$t" "fuzz/corpus/$t" >"$scratch/$t.log" 2>&1; then
        echo "fuzz $t: $(grep -E '^stat::number_of_executed_units' "$scratch/$t.log" | awk '{print $2}') runs in ${seconds} s, no failure"
    else
        echo "fuzz $t: FAILED; its log:"
        tail -n 60 "$scratch/$t.log"
        ls "$artifacts"
        failed+=("$t")
    fi
    if [[ $merge -eq 1 ]]; then
        # The smallest set of the kept and the new inputs that covers what they all
        # cover replaces the kept corpus (seeds are kept as they are).
        mkdir -p "$scratch/$t.min"
        if TMPDIR=$scratch "$bin" -set_cover_merge=1 "$scratch/$t.min" "fuzz/corpus/$t" "$scratch/$t" \
            >"$scratch/$t.merge.log" 2>&1; then
            find "fuzz/corpus/$t" -type f ! -name 'seed-*' -delete
            # libFuzzer names what it keeps by its SHA-1: the seeds' own are not copied.
            local_seeds=$(find "fuzz/corpus/$t" -type f -name 'seed-*' -exec sha1sum {} + | cut -d' ' -f1)
            for f in "$scratch/$t.min"/*; do
                grep -qx "$(basename "$f")" <<<"$local_seeds" || cp "$f" "fuzz/corpus/$t/"
            done
            echo "fuzz $t: corpus now $(ls "fuzz/corpus/$t" | wc -l) inputs"
        else
            echo "fuzz $t: merging failed:"
            tail -n 20 "$scratch/$t.merge.log"
        fi
    fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: failed: ${failed[*]} (inputs under target/fuzz/artifacts/)"
    exit 1
fi
