#pragma once
// One gene of a differential-expression result, as the DE table and the volcano plot show it.
// The app fills these from core's DE output; views never reads files itself.
#include <QString>
#include <cmath>

namespace uce::views {

struct DeRow {
  QString gene;
  double log2FoldChange = NAN;  // log2(mean in group / mean in rest), normalised counts
  double meanIn = NAN;          // mean normalised expression in the group
  double meanOut = NAN;         // ... in the rest (or the reference group)
  double pctIn = NAN;           // share of group cells with count > 0, in [0, 1]
  double pctOut = NAN;          // ... of reference cells
  double pValue = NAN;          // two-sided
  double pAdjusted = NAN;       // Benjamini-Hochberg over all genes tested
};

}  // namespace uce::views
