#pragma once
// The UCE network (UCE_SPEC section 4) as a LibTorch module whose parameter names are exactly
// the public release's state-dict keys, so released weights load as they are.
// Layout is batch-first: tokens [batch, seq] int64, activations [batch, seq, d_model].
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "uce/model/torch_file.h"

namespace uce::model {

// Dimensions of a UCE network. Everything but nhead is inferred from state-dict shapes.
struct UceConfig {
  int64_t nTokens = 145469;   // rows of pe_embedding
  int64_t tokenDim = 5120;    // protein-embedding size (ESM2-15B)
  int64_t dModel = 1280;
  int64_t dHid = 5120;        // transformer feed-forward width
  int64_t outputDim = 1280;   // cell-embedding size
  int64_t nLayers = 4;
  int64_t nHead = 20;         // not stored in the weights; 20 for both released models
  int64_t decoderHidden = 1024;
  int64_t maxLen = 1536;      // rows of pos_encoder.pe (pad_length)
  int64_t geneHeadDim = 1280; // width of gene_embedding_layer output (release hard-codes 1280)
  // Widths of the binary decoder's three hidden blocks. The release hard-codes 2048, 512, 128;
  // a small model may use a narrower head (read back from the state dict's shapes). The head
  // scores every (cell, loss gene) pair, so at the release's widths it costs a small model more
  // than its transformer.
  std::array<int64_t, 3> headHidden{2048, 512, 128};
  bool trainingHead = true;   // gene_embedding_layer + binary_decoder present
  std::string describe() const;
};

// Reads dimensions from a state dict; throws uce::Error naming `file` and the first missing
// key or mismatched shape.
UceConfig inferConfig(const NamedTensors& stateDict, const std::string& file, int64_t nHead = 20);

class UceNetworkImpl : public torch::nn::Module {
 public:
  // initialize = false leaves every parameter uninitialised, for a caller that loads all of
  // them next (loadStateDict, setTokenTable): the release's shapes would otherwise draw ~1.4 G
  // random numbers (its 145,000 x 5,120 token table and 33 layers) only to overwrite them.
  explicit UceNetworkImpl(const UceConfig& config, bool initialize = true);

  // Cell embeddings, L2-normalised: tokens [B, L] int64, keyMask [B, L] bool (true = real
  // token; an undefined tensor = no padding in the batch). Returns [B, outputDim] float32. Padded keys are excluded from attention, so a
  // cell's embedding does not depend on the other cells in its batch.
  torch::Tensor embed(const torch::Tensor& tokens, const torch::Tensor& keyMask);
  // Transformer output for every position: [B, L, d_model].
  torch::Tensor encode(const torch::Tensor& tokens, const torch::Tensor& keyMask);
  // Un-normalised decoder output of the CLS position: [B, outputDim].
  torch::Tensor decodeCls(const torch::Tensor& encoded);
  // Training head: logit that each gene is expressed. cellEmb [B, outputDim],
  // geneTokens [B, G] int64 -> [B, G].
  // geneOut (optional): the genes' gene_embedding_layer outputs, [B, G, geneHeadDim].
  torch::Tensor geneLogits(const torch::Tensor& cellEmb, const torch::Tensor& geneTokens,
                           torch::Tensor* geneOut = nullptr);
  // Multiplies the first binary-decoder layer's weights on the cell embedding (its first
  // output_dim input columns) by `gain` (an initialisation choice of the trainer).
  void scaleCellInputOfBinaryDecoder(double gain);
  // Multiplies the query and key rows of layer 0's in_proj_weight by gain (an initialisation
  // choice; see TrainOptions::firstLayerQkGain).
  void scaleFirstLayerQueryKey(double gain);

  // Copies a state dict in; every key of the module must be present with the same shape
  // (pe_embedding may be skipped when tokens come separately). Throws uce::Error. adopt: a
  // contiguous tensor of the parameter's dtype becomes the parameter itself instead of being
  // copied (the release's 33 layers are 2.6 GB); the caller must then neither use nor change
  // the state dict's tensors afterwards.
  void loadStateDict(const NamedTensors& stateDict, const std::string& file, bool requireTokens = true,
                     bool adopt = false);
  // Parameters and buffers under the release's state-dict names, in registration order.
  NamedTensors stateDict();
  // Replaces the token table (e.g. from all_tokens.torch) [nTokens, tokenDim]; adopt as in
  // loadStateDict (a contiguous float table is taken as it is, not copied).
  void setTokenTable(const torch::Tensor& table, bool adopt = false);
  const UceConfig& config() const { return config_; }

  // Inference set-up, after the weights and the device are final: puts the module in eval
  // mode, computes every token's input vector once (the encoder is position-wise), and runs
  // the transformer layers in layerDtype (kBFloat16 on CUDA for speed; the decoder stays
  // fp32). foldBiases: the residual adds run inside the GEMMs (biases folded into the next
  // LayerNorm shift; same outputs; not for autocast, whose weights stay fp32). train(true)
  // drops the cache and the folded biases are then ignored.
  void prepareInference(torch::ScalarType layerDtype = torch::kFloat, bool foldBiases = true);
  // CUDA, LibTorch >= 2.5: whether fused attention may use cuDNN's kernels (fastest on Hopper,
  // but each new batch shape costs a plan build; flash kernels have none). Process-wide.
  static void preferCuDnnAttention(bool on);
  void train(bool on = true) override;
  // Activation checkpointing in training: layer activations are recomputed in the backward
  // pass instead of kept (memory for depth: needed for 33 layers at useful batch sizes).
  void setActivationCheckpointing(bool on) { checkpointing_ = on; }
  bool activationCheckpointing() const { return checkpointing_; }
  // Training: kBFloat16 runs the transformer layers wholly in bf16 in passes with gradients
  // (TrainOptions::bf16Layers): each such pass casts their weights (the parameters stay fp32)
  // and the activations between their operations, LayerNorm and dropout included, stay bf16.
  // Passes without gradients (validation, embedding) are unaffected. kFloat (the default): fp32
  // between operations, with CUDA autocast running the matmuls in bf16.
  void setTrainingLayerDtype(torch::ScalarType dtype);
  torch::ScalarType trainingLayerDtype() const { return trainLayerDtype_; }
  // Called by embed() after the layer-0 inputs are computed (0) and after the transformer
  // layers (1), for the trainer's UCE_TRAIN_TRACE timing; null (the default) = no calls.
  void setPhaseHook(std::function<void(int)> hook) { phaseHook_ = std::move(hook); }

  torch::nn::Embedding pe_embedding{nullptr};
  torch::nn::Sequential encoder{nullptr};
  torch::nn::Sequential decoder{nullptr};
  torch::nn::Sequential gene_embedding_layer{nullptr};
  torch::nn::Sequential binary_decoder{nullptr};

 private:
  UceConfig config_;
  torch::Tensor pe_;  // [maxLen, 1, d_model] sinusoidal, registered as pos_encoder.pe
  torch::nn::ModuleList layers_{nullptr};
  torch::Tensor tokenCache_;  // [nTokens, d_model] encoder output per token (inference only)
  torch::ScalarType computeDtype_ = torch::kFloat;
  bool checkpointing_ = false;
  torch::ScalarType trainLayerDtype_ = torch::kFloat;
  std::function<void(int)> phaseHook_;

  torch::Tensor inputs(const torch::Tensor& tokens);  // [B, L, d] layer-0 input
  torch::Tensor runLayers(torch::Tensor x, const torch::Tensor& keyMask, bool firstOnlyAtEnd);
};
TORCH_MODULE(UceNetwork);

// Sinusoidal position table [maxLen, 1, d] of UCE_SPEC section 4.
torch::Tensor sinusoidalPositions(int64_t maxLen, int64_t d);

}  // namespace uce::model
