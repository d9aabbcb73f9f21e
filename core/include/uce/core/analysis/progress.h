#pragma once
// Progress and cancel of the long analysis calls (kNN graph, UMAP, Leiden). Each options struct
// (KnnOptions, UmapOptions, LeidenOptions, ClusterOptions) has a `progress` hook:
//
//   progress(stage, fraction) -> bool
//
// stage names the step running ("kNN graph", "UMAP layout", "Leiden", ...); fraction is the
// share of the whole call done, in [0, 1] and never decreasing. It is called on the calling
// thread, every chunk of work: row blocks of the kNN search, stretches of the HNSW build, every
// SGD epoch and eigensolver step of UMAP, every ~10,000 node visits of Leiden; for typical inputs
// well under a second apart. Returning false cancels: the call stops at the next chunk and
// throws uce::Error(Cancelled). No hook (the default) costs nothing, and the results are the
// same bit for bit with a hook that never cancels. Hooks should be quick (a few atomics or a
// mutex, as the app's JobContext::report) and must not start analysis calls themselves.
#include <algorithm>
#include <functional>

#include "uce/core/error.h"

namespace uce::analysis {

using ProgressFn = std::function<bool(const char* stage, double fraction)>;

// Calls progress (when set) with fraction clamped into [0, 1]; throws uce::Error(Cancelled)
// ("cancelled during <stage>") when it returns false.
inline void reportProgress(const ProgressFn& progress, const char* stage, double fraction) {
  if (!progress) return;
  if (!progress(stage, std::min(1.0, std::max(0.0, fraction))))
    throw Error(ErrorKind::Cancelled, "", std::string("cancelled during ") + stage);
}

// A hook for a part of a call: fractions [0, 1] of the part map onto [from, to] of `progress`.
// Empty when progress is empty.
inline ProgressFn progressSpan(const ProgressFn& progress, double from, double to) {
  if (!progress) return {};
  return [progress, from, to](const char* stage, double f) { return progress(stage, from + (to - from) * f); };
}

}  // namespace uce::analysis
