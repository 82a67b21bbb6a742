# Shared by the scripts that cache a build of a pinned Go peer (otelcol-peer, prometheus3),
# one directory per pin under a cache directory. Sourced, not run.

# Marks the build of pin `$2` under `$1` as just used.
cache_used() {
    touch "$1/$2" 2>/dev/null || true
}

# Removes all but the most recently used builds under `$1`, keeping `$2` (the one just made)
# and two others: another checkout on the same machine (a fresh clone under test, a branch)
# may still be running the build of its own pin.
cache_prune() {
    local cache="$1" keep="$2" dir n=0
    cache_used "$cache" "$keep"
    while IFS= read -r dir; do
        n=$((n + 1))
        if ((n > 3)) && [[ "$(basename "$dir")" != "$keep" ]]; then
            rm -rf "$dir"
        fi
    done < <(ls -1dt "$cache"/*/ 2>/dev/null)
}
