#pragma once
#include <string>

namespace uce::model {
// Version of the LibTorch the model layer was built against ("1.13.0").
std::string torchVersion();
// True when a CUDA device is usable at run time.
bool cudaAvailable();
}  // namespace uce::model
