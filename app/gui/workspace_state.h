#pragma once
// Private to the workspace: what a DatasetDoc holds, and how it is read from a file.
#include <QMap>
#include <QSet>
#include <QString>
#include <QStringList>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "uce/core/dataframe.h"
#include "uce/core/dataset.h"
#include "uce/core/error.h"
#include "workspace.h"

namespace uce::gui {

struct DatasetDoc::State {
  QString path, basePath, format;
  qint64 cells = 0, genes = 0;
  DataFrame fileObs, var;
  DataFrame obs;                   // fileObs + extras
  QStringList matrices;
  EmbedGuess guess;
  QStringList fileObsmKeys;        // obsm keys of basePath
  QMap<QString, std::shared_ptr<const DenseMatrix>> obsm;  // loaded or computed
  QSet<QString> computedObsm;      // not in basePath yet
  QString modelSha;                // uns uce/model_sha256 of basePath
  std::vector<Column> extras;      // clusters and annotations made in this session
  QStringList annotations;
  QString clusterKey = "leiden";
  std::vector<int32_t> clusters;
  int clusterCount = 0;
  std::map<std::string, UnsValue> pendingUns;  // parameters of this session's results
  bool modified = false;
};

// Reads a dataset's metadata, guesses and the obsm arrays the app shows (X_uce, X_umap*).
std::unique_ptr<DatasetDoc::State> loadDocState(const QString& path, JobContext& ctx);
// Re-reads basePath's obsm keys / X_uce / provenance into `state` (after embedding).
void loadEmbedding(DatasetDoc::State& state, const Dataset& ds);
// The error message of a failed open, with what the user can do about it.
std::string openAdvice(const Error& e);

}  // namespace uce::gui
