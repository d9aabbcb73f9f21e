#pragma once
// Precompiled header for uce_model: LibTorch is most of the compile time.
#include <torch/torch.h>
#include <torch/serialize.h>
#include <caffe2/serialize/inline_container.h>
