#include "uce/model/version.h"

#include <torch/version.h>

namespace uce::model {

std::string torchVersion() { return TORCH_VERSION; }

bool cudaAvailable() { return torch::cuda::is_available(); }

}  // namespace uce::model
