#include "uce/model/network.h"

#include <torch/version.h>

#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include "autocast.h"
#include "uce/core/error.h"

namespace uce::model {
namespace {

// Scaled dot-product attention of q [B, H, Lq, hd] over k, v [B, H, L, hd]; keyMask [B, L]
// bool (true = attend) or undefined when nothing is padded.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& keyMask) {
  const int64_t B = k.size(0), L = k.size(2);
  // Padded keys are excluded (the release adds +1 to them instead; see UCE_SPEC 4).
#if TORCH_VERSION_MAJOR >= 2
  // Fused attention (flash / memory-efficient kernels on CUDA). Without padding in the
  // batch no mask is passed, which lets the fastest kernels run.
  return keyMask.defined() ? at::scaled_dot_product_attention(q, k, v, keyMask.view({B, 1, 1, L}))
                           : at::scaled_dot_product_attention(q, k, v);
#else
  // In place where the result is the same: the scores are the largest buffers of a pass.
  auto scores = torch::matmul(q, k.transpose(-2, -1));
  scores.div_(std::sqrt(static_cast<double>(q.size(-1))));
  if (keyMask.defined())
    scores.masked_fill_(keyMask.logical_not().view({B, 1, 1, L}), -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), v);
#endif
}

// torch::nn::Linear(in, out); without `init` its weight and bias are left uninitialised (the
// caller loads them next) instead of drawn at random.
torch::nn::Linear linearLayer(int64_t in, int64_t out, bool init) {
  if (init) return torch::nn::Linear(in, out);
  torch::nn::Linear l(1, 1);
  l->options.in_features(in).out_features(out);
  torch::NoGradGuard noGrad;
  l->weight.set_data(torch::empty({out, in}));
  l->bias.set_data(torch::empty({out}));
  return l;
}

// Self-attention with packed q/k/v projections (nn.MultiheadAttention's computation) on the
// given weights: the module's own, or their bf16 copies (TrainOptions::bf16Layers).
// x [B, L, d], keyMask [B, L] bool (true = attend), undefined when nothing is padded.
torch::Tensor selfAttention(const torch::Tensor& x, const torch::Tensor& keyMask, int64_t heads,
                            const torch::Tensor& inW, const torch::Tensor& inB, const torch::Tensor& outW,
                            const torch::Tensor& outB) {
  const int64_t B = x.size(0), L = x.size(1), d = x.size(2), hd = d / heads;
  auto qkv = torch::nn::functional::linear(x, inW, inB)
                 .view({B, L, 3, heads, hd})
                 .permute({2, 0, 3, 1, 4});  // [3, B, H, L, hd]
  auto out = attend(qkv[0], qkv[1], qkv[2], keyMask).permute({0, 2, 1, 3}).reshape({B, L, d});
  return torch::nn::functional::linear(out, outW, outB);
}
// The output at position 0 only ([B, 1, d]): queries of the CLS token over every key. This is
// all the last layer has to compute, since the decoder reads the CLS position alone.
torch::Tensor selfAttentionFirst(const torch::Tensor& x, const torch::Tensor& keyMask, int64_t heads,
                                 const torch::Tensor& inW, const torch::Tensor& inB, const torch::Tensor& outW,
                                 const torch::Tensor& outB) {
  const int64_t B = x.size(0), L = x.size(1), d = x.size(2), hd = d / heads;
  auto q = torch::nn::functional::linear(x.narrow(1, 0, 1), inW.narrow(0, 0, d), inB.narrow(0, 0, d))
               .view({B, 1, heads, hd})
               .permute({0, 2, 1, 3});  // [B, H, 1, hd]
  auto kv = torch::nn::functional::linear(x, inW.narrow(0, d, 2 * d), inB.narrow(0, d, 2 * d))
                .view({B, L, 2, heads, hd})
                .permute({2, 0, 3, 1, 4});  // [2, B, H, L, hd]
  auto out = attend(q, kv[0], kv[1], keyMask).permute({0, 2, 1, 3}).reshape({B, 1, d});
  return torch::nn::functional::linear(out, outW, outB);
}

// PyTorch's nn.MultiheadAttention's parameters (packed q/k/v projections); names match.
struct SelfAttentionImpl : torch::nn::Module {
  SelfAttentionImpl(int64_t d, int64_t heads, bool init) : d(d), heads(heads) {
    in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * d, d}));
    in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * d}));
    out_proj = register_module("out_proj", linearLayer(d, d, init));
    if (init) torch::nn::init::xavier_uniform_(in_proj_weight);
  }
  int64_t d, heads;
  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(SelfAttention);

// nn.TransformerEncoderLayer defaults: post-norm, ReLU, eps 1e-5; dropout only in training.
struct EncoderLayerImpl : torch::nn::Module {
  EncoderLayerImpl(int64_t d, int64_t heads, int64_t hid, bool init) {
    self_attn = register_module("self_attn", SelfAttention(d, heads, init));
    linear1 = register_module("linear1", linearLayer(d, hid, init));
    linear2 = register_module("linear2", linearLayer(hid, d, init));
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5)));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5)));
  }
  // firstOnly: compute the output at position 0 only ([B, 1, d]). castTo (training with bf16
  // layers, UceNetworkImpl::setTrainingLayerDtype): every weight is cast to it for this pass
  // (differentiably; the parameters, which the optimizer updates, keep their dtype) and the
  // layer runs on tensors of that dtype throughout, LayerNorm and dropout included.
  torch::Tensor forward(const torch::Tensor& in, const torch::Tensor& keyMask, bool firstOnly = false,
                        std::optional<torch::ScalarType> castTo = std::nullopt) {
    if (folded.on && !is_training() && !cudaAutocastEnabled() && !castTo)
      return forwardFolded(in, keyMask, firstOnly);
    auto w = [&](const torch::Tensor& t) { return castTo ? t.to(*castTo) : t; };
    const auto& sa = *self_attn;
    const double p = is_training() ? 0.05 : 0.0;
    torch::Tensor x = firstOnly ? in.narrow(1, 0, 1) : in;
    const auto inW = w(sa.in_proj_weight), inB = w(sa.in_proj_bias);
    const auto outW = w(sa.out_proj->weight), outB = w(sa.out_proj->bias);
    auto a = firstOnly ? selfAttentionFirst(in, keyMask, sa.heads, inW, inB, outW, outB)
                       : selfAttention(in, keyMask, sa.heads, inW, inB, outW, outB);
    const int64_t d = sa.d;
    x = torch::layer_norm(x + torch::dropout(a, p, is_training()), {d}, w(norm1->weight), w(norm1->bias), 1e-5);
    auto y = torch::nn::functional::linear(torch::dropout(hidden(x, w(linear1->weight), w(linear1->bias)), p, is_training()),
                                           w(linear2->weight), w(linear2->bias));
    return torch::layer_norm(x + torch::dropout(y, p, is_training()), {d}, w(norm2->weight), w(norm2->bias), 1e-5);
  }
  // relu(x W1^T + b1); in inference on CUDA with matching dtypes one fused cuBLASLt call. Not in
  // a pass with gradients, dropout off or not (--no-dropout trains in eval mode; with bf16 layers
  // the dtypes match and autocast is off there too): the fused call is for inference.
  torch::Tensor hidden(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& b1) {
#if TORCH_VERSION_MAJOR >= 2
    if (!is_training() && !torch::GradMode::is_enabled() && x.is_cuda() && x.scalar_type() == w1.scalar_type() &&
        !cudaAutocastEnabled()) {
      auto flat = x.reshape({-1, x.size(-1)});
      auto h = at::_addmm_activation(b1, flat, w1.t());
      auto sizes = x.sizes().vec();
      sizes.back() = h.size(-1);
      return h.view(sizes);
    }
#endif
    return torch::relu(torch::nn::functional::linear(x, w1, b1));
  }
  // Inference with the two residual adds inside the GEMMs (no separate add kernels). The
  // layer's input arrives with out_proj's bias b_o already added (the previous layer's norm2
  // shift, or the token table, carries it), so the attention residual is one in-place
  // addmm: (x + b_o) += a W_o^T. Likewise norm1 adds linear2's bias b2 through its shift,
  // and (x1 + b2) += h W2^T. The q/k/v and linear1 biases are corrected for the shifted
  // inputs (b - W b_o, b1 - W1 b2), so every output equals the unfolded layer's. Consumes
  // `in` (it is the accumulator).
  struct Folded {
    bool on = false;
    torch::Tensor qkvBias, bias1, shift1, shift2;  // [3d], [d_hid], [d], [d]
  } folded;
  // Sets the folded biases; nextOutBias: out_proj bias of the next layer (undefined for the last).
  void fold(const torch::Tensor& nextOutBias) {
    torch::NoGradGuard noGrad;
    auto f32 = [](const torch::Tensor& t) { return t.to(torch::kFloat); };
    const auto bo = f32(self_attn->out_proj->bias), b2 = f32(linear2->bias);
    folded.qkvBias = f32(self_attn->in_proj_bias) - torch::mv(f32(self_attn->in_proj_weight), bo);
    folded.bias1 = f32(linear1->bias) - torch::mv(f32(linear1->weight), b2);
    folded.shift1 = f32(norm1->bias) + b2;
    folded.shift2 = nextOutBias.defined() ? f32(norm2->bias) + f32(nextOutBias) : f32(norm2->bias);
    const auto dt = linear1->weight.scalar_type();
    for (auto* t : {&folded.qkvBias, &folded.bias1, &folded.shift1, &folded.shift2}) *t = t->to(dt);
    folded.on = true;
  }
  torch::Tensor forwardFolded(const torch::Tensor& in, const torch::Tensor& keyMask, bool firstOnly) {
    auto& sa = *self_attn;
    const int64_t B = in.size(0), L = in.size(1), d = sa.d, hd = d / sa.heads;
    const auto& wo = sa.out_proj->weight;
    torch::Tensor z;  // [B * Lout, d]: input + attention output projection
    if (firstOnly) {
      auto q = torch::nn::functional::linear(in.narrow(1, 0, 1), sa.in_proj_weight.narrow(0, 0, d),
                                             folded.qkvBias.narrow(0, 0, d))
                   .view({B, 1, sa.heads, hd})
                   .permute({0, 2, 1, 3});
      auto kv = torch::nn::functional::linear(in, sa.in_proj_weight.narrow(0, d, 2 * d), folded.qkvBias.narrow(0, d, 2 * d))
                    .view({B, L, 2, sa.heads, hd})
                    .permute({2, 0, 3, 1, 4});
      auto a = attend(q, kv[0], kv[1], keyMask).permute({0, 2, 1, 3}).reshape({B, d});
      z = torch::addmm(in.select(1, 0), a, wo.t());
    } else {
      auto qkv = torch::nn::functional::linear(in, sa.in_proj_weight, folded.qkvBias)
                     .view({B, L, 3, sa.heads, hd})
                     .permute({2, 0, 3, 1, 4});
      auto a = attend(qkv[0], qkv[1], qkv[2], keyMask).permute({0, 2, 1, 3}).reshape({B * L, d});
      z = in.reshape({B * L, d});
      if (!z.is_contiguous() || z.data_ptr() != in.data_ptr()) z = z.contiguous();
      z.addmm_(a, wo.t());
    }
    auto x1 = torch::layer_norm(z, {d}, norm1->weight, folded.shift1, 1e-5);
    torch::Tensor h;
#if TORCH_VERSION_MAJOR >= 2
    if (x1.is_cuda()) h = at::_addmm_activation(folded.bias1, x1, linear1->weight.t());
#endif
    if (!h.defined()) h = torch::relu(torch::addmm(folded.bias1, x1, linear1->weight.t()));
    x1.addmm_(h, linear2->weight.t());
    return torch::layer_norm(x1, {d}, norm2->weight, folded.shift2, 1e-5).view({B, firstOnly ? 1 : L, d});
  }
  SelfAttention self_attn{nullptr};
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
};
TORCH_MODULE(EncoderLayer);

// Activation checkpointing of one layer: the forward keeps only the layer's input; the
// backward runs the layer again (same dropout masks: the RNG state is saved and restored, and
// autocast is re-entered as it was) and back-propagates through it.
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  // The mask goes by address (an undefined tensor may not be a Function input in LibTorch 2).
  // castTo: a torch::ScalarType, or -1 for none (EncoderLayer::forward).
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, int64_t maskAddress,
                               int64_t layerAddress, bool firstOnly, int64_t castTo) {
    auto* layer = reinterpret_cast<EncoderLayerImpl*>(static_cast<intptr_t>(layerAddress));
    const torch::Tensor& keyMask = *reinterpret_cast<const torch::Tensor*>(static_cast<intptr_t>(maskAddress));
    ctx->saved_data["layer"] = layerAddress;
    ctx->saved_data["first"] = firstOnly;
    ctx->saved_data["cast"] = castTo;
    ctx->saved_data["autocast"] = cudaAutocastEnabled();
    ctx->saved_data["mask"] = keyMask;
    ctx->saved_data["rng"] = rngState(x.device());
    ctx->save_for_backward({x});
    return layer->forward(x, keyMask, firstOnly, castOf(castTo));
  }
  static std::optional<torch::ScalarType> castOf(int64_t castTo) {
    return castTo < 0 ? std::nullopt : std::optional<torch::ScalarType>(static_cast<torch::ScalarType>(castTo));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* layer = reinterpret_cast<EncoderLayerImpl*>(static_cast<intptr_t>(ctx->saved_data["layer"].toInt()));
    const torch::Tensor x = ctx->get_saved_variables()[0];
    const torch::Tensor mask = ctx->saved_data["mask"].toTensor();
    const bool firstOnly = ctx->saved_data["first"].toBool();
    const bool autocast = ctx->saved_data["autocast"].toBool();
    // Recompute with the forward's RNG state, then give the RNG back its current state.
    const torch::Tensor now = rngState(x.device());
    setRngState(x.device(), ctx->saved_data["rng"].toTensor());
    torch::Tensor xd = x.detach().requires_grad_(true);
    torch::Tensor out;
    {
      torch::AutoGradMode enable(true);
      const bool before = cudaAutocastEnabled();
      if (autocast != before) setCudaAutocast(autocast);
      out = layer->forward(xd, mask, firstOnly, castOf(ctx->saved_data["cast"].toInt()));
      if (autocast != before) setCudaAutocast(before);
    }
    setRngState(x.device(), now);
    torch::autograd::backward({out}, {grads[0]});
    return {xd.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
  static at::Generator generator(const torch::Device& device) {
    return device.is_cuda() ? at::globalContext().defaultGenerator(device) : at::detail::getDefaultCPUGenerator();
  }
  static torch::Tensor rngState(const torch::Device& device) {
    at::Generator g = generator(device);
    std::lock_guard<std::mutex> lock(g.mutex());
    return g.get_state();
  }
  static void setRngState(const torch::Device& device, const torch::Tensor& state) {
    at::Generator g = generator(device);
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(state);
  }
};

torch::nn::LayerNorm layerNorm(int64_t d) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5));
}

// Linear, LayerNorm, GELU, Dropout: the release's full_block (children named "0" and "1").
struct FullBlockImpl : torch::nn::Module {
  FullBlockImpl(int64_t in, int64_t out, bool init) {
    linear = register_module("0", linearLayer(in, out, init));
    norm = register_module("1", layerNorm(out));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::dropout(torch::gelu(norm(linear(x))), 0.1, is_training());
  }
  torch::nn::Linear linear{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(FullBlock);

FullBlock fullBlock(int64_t in, int64_t out, bool init) { return FullBlock(in, out, init); }

// Container modules so that names read "pos_encoder.pe" and "transformer_encoder.layers.k".
struct HolderImpl : torch::nn::Module {};
TORCH_MODULE(Holder);

std::string shapeOf(const torch::Tensor& t) {
  std::ostringstream o;
  o << t.sizes();
  return o.str();
}

}  // namespace

std::string UceConfig::describe() const {
  std::ostringstream o;
  o << nLayers << " layers, d_model " << dModel << ", " << nHead << " heads, d_hid " << dHid
    << ", token_dim " << tokenDim << ", output " << outputDim << ", " << nTokens << " tokens";
  if (trainingHead && headHidden != std::array<int64_t, 3>{2048, 512, 128})
    o << ", head " << headHidden[0] << "/" << headHidden[1] << "/" << headHidden[2];
  return o.str();
}

torch::Tensor sinusoidalPositions(int64_t maxLen, int64_t d) {
  auto position = torch::arange(maxLen, torch::kFloat).unsqueeze(1);
  auto divTerm = torch::exp(torch::arange(0, d, 2, torch::kFloat) * (-std::log(10000.0) / d));
  auto pe = torch::zeros({maxLen, 1, d});
  pe.index_put_({torch::indexing::Slice(), 0, torch::indexing::Slice(0, torch::indexing::None, 2)},
                torch::sin(position * divTerm));
  pe.index_put_({torch::indexing::Slice(), 0, torch::indexing::Slice(1, torch::indexing::None, 2)},
                torch::cos(position * divTerm));
  return pe;
}

UceConfig inferConfig(const NamedTensors& sd, const std::string& file, int64_t nHead) {
  std::map<std::string, torch::Tensor> m(sd.begin(), sd.end());
  auto need = [&](const std::string& key, int64_t dims) -> const torch::Tensor& {
    auto it = m.find(key);
    if (it == m.end())
      uce::fail(uce::ErrorKind::Format, file,
                "not a UCE state dict: key '" + key + "' is missing");
    if (it->second.dim() != dims)
      uce::fail(uce::ErrorKind::Format, file,
                "not a UCE state dict: '" + key + "' has shape " + shapeOf(it->second) +
                    ", expected " + std::to_string(dims) + " dimensions");
    return it->second;
  };
  UceConfig c;
  c.nHead = nHead;
  const auto& enc = need("encoder.0.weight", 2);
  c.dModel = enc.size(0);
  c.tokenDim = enc.size(1);
  if (m.count("pe_embedding.weight")) c.nTokens = need("pe_embedding.weight", 2).size(0);
  c.dHid = need("transformer_encoder.layers.0.linear1.weight", 2).size(0);
  c.decoderHidden = need("decoder.0.0.weight", 2).size(0);
  c.outputDim = need("decoder.3.weight", 2).size(0);
  c.maxLen = m.count("pos_encoder.pe") ? need("pos_encoder.pe", 3).size(0) : 1536;
  c.nLayers = 0;
  while (m.count("transformer_encoder.layers." + std::to_string(c.nLayers) + ".linear1.weight")) ++c.nLayers;
  c.trainingHead = m.count("binary_decoder.3.weight") > 0;
  if (c.trainingHead) {
    c.geneHeadDim = need("gene_embedding_layer.0.weight", 2).size(0);
    for (size_t k = 0; k < c.headHidden.size(); ++k)
      c.headHidden[k] = need("binary_decoder." + std::to_string(k) + ".0.weight", 2).size(0);
  }
  if (c.nHead <= 0 || c.dModel % c.nHead != 0)
    uce::fail(uce::ErrorKind::InvalidArgument, file,
              "d_model " + std::to_string(c.dModel) + " is not divisible by nhead " + std::to_string(c.nHead));
  return c;
}

UceNetworkImpl::UceNetworkImpl(const UceConfig& c, bool init) : config_(c) {
  if (init) {
    pe_embedding = register_module("pe_embedding", torch::nn::Embedding(c.nTokens, c.tokenDim));
  } else {
    torch::nn::Embedding e(1, 1);
    e->options = torch::nn::EmbeddingOptions(c.nTokens, c.tokenDim);
    torch::NoGradGuard noGrad;
    e->weight.set_data(torch::empty({c.nTokens, c.tokenDim}));
    pe_embedding = register_module("pe_embedding", e);
  }
  pe_embedding->weight.set_requires_grad(false);  // frozen protein embeddings
  encoder = register_module("encoder", torch::nn::Sequential(linearLayer(c.tokenDim, c.dModel, init),
                                                             torch::nn::GELU(), layerNorm(c.dModel)));
  auto pos = register_module("pos_encoder", Holder());
  pe_ = pos->register_buffer("pe", sinusoidalPositions(c.maxLen, c.dModel));
  auto te = register_module("transformer_encoder", Holder());
  layers_ = te->register_module("layers", torch::nn::ModuleList());
  for (int64_t k = 0; k < c.nLayers; ++k) layers_->push_back(EncoderLayer(c.dModel, c.nHead, c.dHid, init));
  decoder = register_module("decoder", torch::nn::Sequential(
      fullBlock(c.dModel, c.decoderHidden, init), fullBlock(c.decoderHidden, c.outputDim, init),
      fullBlock(c.outputDim, c.outputDim, init), linearLayer(c.outputDim, c.outputDim, init)));
  if (c.trainingHead) {
    gene_embedding_layer = register_module(
        "gene_embedding_layer", torch::nn::Sequential(linearLayer(c.tokenDim, c.geneHeadDim, init),
                                                      torch::nn::GELU(), layerNorm(c.geneHeadDim)));
    binary_decoder = register_module("binary_decoder", torch::nn::Sequential(
        fullBlock(c.outputDim + c.geneHeadDim, c.headHidden[0], init), fullBlock(c.headHidden[0], c.headHidden[1], init),
        fullBlock(c.headHidden[1], c.headHidden[2], init), linearLayer(c.headHidden[2], 1, init)));
  }
}

torch::Tensor UceNetworkImpl::inputs(const torch::Tensor& tokens) {
  const int64_t L = tokens.size(1);
  if (L > config_.maxLen)
    uce::fail(uce::ErrorKind::InvalidArgument, "",
              "sentence of " + std::to_string(L) + " tokens exceeds the model's " +
                  std::to_string(config_.maxLen) + " positions");
  torch::Tensor x;
  if (tokenCache_.defined() && !is_training() && tokenCache_.device() == tokens.device()) {
    x = torch::embedding(tokenCache_, tokens);
  } else {
    x = torch::nn::functional::normalize(pe_embedding(tokens), torch::nn::functional::NormalizeFuncOptions().dim(-1));
    x = encoder->forward(x) * std::sqrt(static_cast<double>(config_.dModel));
    if (!is_training() && !layers_->is_empty() && (*layers_)[0]->as<EncoderLayer>()->folded.on)
      x = x + (*layers_)[0]->as<EncoderLayer>()->self_attn->out_proj->bias.to(x.dtype());  // see forwardFolded
  }
  x = x + pe_.slice(0, 0, L).squeeze(1).unsqueeze(0);  // [1, L, d]
  if (computeDtype_ != torch::kFloat) x = x.to(computeDtype_);
  return x;
}

torch::Tensor UceNetworkImpl::runLayers(torch::Tensor x, const torch::Tensor& keyMask, bool firstOnlyAtEnd) {
  // Without padding no mask is needed (and fused kernels run faster). An undefined keyMask
  // means the caller knows there is none; else one check per batch.
  const torch::Tensor mask = !keyMask.defined() || keyMask.all().item<bool>() ? torch::Tensor() : keyMask;
  const bool checkpoint = checkpointing_ && is_training() && torch::GradMode::is_enabled();
  const size_t n = layers_->size();
  // Training with bf16 layers (setTrainingLayerDtype; a pass with gradients, dropout on or
  // off): the residual stream enters in bf16 and the layers cast their own weights, so
  // autocast, which would run every LayerNorm in fp32 with casts on either side, is off for
  // them (a checkpointed layer's recomputation does the same).
  const bool castLayers = trainLayerDtype_ != torch::kFloat && torch::GradMode::is_enabled();
  const int64_t castTo = castLayers ? static_cast<int64_t>(trainLayerDtype_) : -1;
  struct AutocastOff {  // off for the layers, back on after them (also when one throws)
    bool was;
    explicit AutocastOff(bool on) : was(on) {
      if (was) setCudaAutocast(false);
    }
    ~AutocastOff() {
      if (was) setCudaAutocast(true);
    }
  };
  if (castLayers) x = x.to(trainLayerDtype_);
  const AutocastOff autocastOff(castLayers && cudaAutocastEnabled());
  for (size_t k = 0; k < n; ++k) {
    auto* layer = (*layers_)[k]->as<EncoderLayer>();
    const bool first = firstOnlyAtEnd && k + 1 == n;
    x = checkpoint ? CheckpointedLayer::apply(x, static_cast<int64_t>(reinterpret_cast<intptr_t>(&mask)),
                                              static_cast<int64_t>(reinterpret_cast<intptr_t>(layer)), first, castTo)
                   : layer->forward(x, mask, first, CheckpointedLayer::castOf(castTo));
  }
  return x;
}

void UceNetworkImpl::setTrainingLayerDtype(torch::ScalarType dtype) {
  if (dtype != torch::kFloat && dtype != torch::kBFloat16)
    uce::fail(uce::ErrorKind::InvalidArgument, "", "training layers run in float32 or bfloat16 only");
  trainLayerDtype_ = dtype;
}

torch::Tensor UceNetworkImpl::encode(const torch::Tensor& tokens, const torch::Tensor& keyMask) {
  return runLayers(inputs(tokens), keyMask, false);
}

torch::Tensor UceNetworkImpl::decodeCls(const torch::Tensor& encoded) {
  return decoder->forward(encoded.select(1, 0).to(torch::kFloat));
}

torch::Tensor UceNetworkImpl::embed(const torch::Tensor& tokens, const torch::Tensor& keyMask) {
  // The last layer computes the CLS position only: the decoder reads nothing else.
  auto x = inputs(tokens);
  if (phaseHook_) phaseHook_(0);
  x = runLayers(std::move(x), keyMask, true);
  if (phaseHook_) phaseHook_(1);
  auto out = decodeCls(x);
  return torch::nn::functional::normalize(out, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

void UceNetworkImpl::prepareInference(torch::ScalarType layerDtype, bool foldBiases) {
  torch::NoGradGuard noGrad;
  eval();
  // Every token's input vector is a fixed function of its row: compute the table once.
  const auto& table = pe_embedding->weight;
  // Blocks of a fixed size, the last one padded with zero rows: every token's vector then comes
  // out of a product of the same shape at the same place in its block, whatever the table's
  // size. BLAS kernels may round a row differently in products of other shapes, and a table
  // extended by a new species must leave the existing tokens' vectors bit-identical.
  const int64_t n = table.size(0), step = 256;
  tokenCache_ = torch::empty({n, config_.dModel}, table.options());
  for (int64_t r = 0; r < n; r += step) {
    const int64_t m = std::min(step, n - r);
    auto block = table.narrow(0, r, m);
    if (m < step) block = torch::cat({block, torch::zeros({step - m, table.size(1)}, table.options())});
    auto rows = torch::nn::functional::normalize(block, torch::nn::functional::NormalizeFuncOptions().dim(-1));
    tokenCache_.narrow(0, r, m).copy_((encoder->forward(rows) * std::sqrt(static_cast<double>(config_.dModel))).narrow(0, 0, m));
  }
  computeDtype_ = layerDtype;
  for (auto& layer : *layers_) layer->to(layerDtype);
  const size_t nl = layers_->size();
  for (size_t k = 0; k < nl; ++k) {
    auto* layer = (*layers_)[k]->as<EncoderLayer>();
    layer->folded = {};
    if (foldBiases)
      layer->fold(k + 1 < nl ? (*layers_)[k + 1]->as<EncoderLayer>()->self_attn->out_proj->bias : torch::Tensor());
  }
  // The first layer's input carries its out_proj bias (see EncoderLayer::forwardFolded).
  if (foldBiases && nl > 0) tokenCache_ += (*layers_)[0]->as<EncoderLayer>()->self_attn->out_proj->bias.to(tokenCache_.dtype());
  if (layerDtype != torch::kFloat) tokenCache_ = tokenCache_.to(layerDtype);  // half the gather traffic
}

void UceNetworkImpl::preferCuDnnAttention(bool on) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  at::globalContext().setSDPUseCuDNN(on);
#else
  (void)on;
#endif
}

void UceNetworkImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (on) {  // weights will change: the inference caches are stale
    tokenCache_ = torch::Tensor();
    for (auto& layer : *layers_) layer->as<EncoderLayer>()->folded = {};
  }
}

torch::Tensor UceNetworkImpl::geneLogits(const torch::Tensor& cellEmb, const torch::Tensor& geneTokens,
                                         torch::Tensor* geneOut) {
  if (!config_.trainingHead)
    uce::fail(uce::ErrorKind::InvalidArgument, "", "this model has no training head (binary_decoder)");
  auto genes = torch::nn::functional::normalize(
      pe_embedding(geneTokens), torch::nn::functional::NormalizeFuncOptions().dim(-1));
  auto g = gene_embedding_layer->forward(genes);  // [B, G, geneHeadDim]
  if (geneOut) *geneOut = g;
  auto c = cellEmb.unsqueeze(1).expand({-1, geneTokens.size(1), -1});
  return binary_decoder->forward(torch::cat({c, g}, -1)).squeeze(-1);
}

void UceNetworkImpl::scaleCellInputOfBinaryDecoder(double gain) {
  if (!config_.trainingHead)
    uce::fail(uce::ErrorKind::InvalidArgument, "", "this model has no training head (binary_decoder)");
  torch::NoGradGuard noGrad;
  auto& w = (*binary_decoder)[0]->as<FullBlockImpl>()->linear->weight;  // [2048, output_dim + gene dim]
  w.narrow(1, 0, config_.outputDim).mul_(gain);
}

void UceNetworkImpl::scaleFirstLayerQueryKey(double gain) {
  if (layers_->is_empty()) return;
  torch::NoGradGuard noGrad;
  auto& w = (*layers_)[0]->as<EncoderLayer>()->self_attn->in_proj_weight;  // [3d, d]: q, k, v
  w.narrow(0, 0, 2 * config_.dModel).mul_(gain);
}

void UceNetworkImpl::loadStateDict(const NamedTensors& sd, const std::string& file, bool requireTokens, bool adopt) {
  std::map<std::string, torch::Tensor> given(sd.begin(), sd.end());
  torch::NoGradGuard noGrad;
  tokenCache_ = torch::Tensor();
  auto assign = [&](const std::string& name, torch::Tensor& dst) {
    auto it = given.find(name);
    if (it == given.end()) {
      if (name == "pe_embedding.weight" && !requireTokens) return;
      if (name == "pos_encoder.pe") return;  // recomputed: it is a fixed function of the shape
      uce::fail(uce::ErrorKind::Format, file, "state dict does not match the model: key '" + name + "' is missing");
    }
    if (!it->second.sizes().equals(dst.sizes()))
      uce::fail(uce::ErrorKind::Format, file,
                "state dict does not match the model: '" + name + "' has shape " + shapeOf(it->second) +
                    " but the model expects " + shapeOf(dst));
    const torch::Tensor& src = it->second;
    if (adopt && src.scalar_type() == dst.scalar_type() && src.is_contiguous() && src.device() == dst.device())
      dst.set_data(src);
    else
      dst.copy_(src.to(dst.dtype()));
  };
  for (auto& p : named_parameters(true)) assign(p.key(), p.value());
  for (auto& b : named_buffers(true)) assign(b.key(), b.value());
}

NamedTensors UceNetworkImpl::stateDict() {
  NamedTensors out;
  for (auto& p : named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (auto& b : named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

void UceNetworkImpl::setTokenTable(const torch::Tensor& table, bool adopt) {
  tokenCache_ = torch::Tensor();
  if (table.dim() != 2 || table.size(1) != config_.tokenDim)
    uce::fail(uce::ErrorKind::Format, "",
              "token table has shape " + shapeOf(table) + " but the model's token_dim is " +
                  std::to_string(config_.tokenDim));
  torch::NoGradGuard noGrad;
  const bool take = adopt && table.scalar_type() == torch::kFloat && table.is_contiguous() &&
                    table.device() == pe_embedding->weight.device();
  if (take || table.size(0) != pe_embedding->weight.size(0)) {
    pe_embedding->weight.set_data(take ? table : table.to(torch::kFloat).contiguous().clone());
    config_.nTokens = table.size(0);
  } else {
    pe_embedding->weight.copy_(table);
  }
}

}  // namespace uce::model
