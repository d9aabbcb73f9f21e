#include "uce/model/torch_file.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include "uce/core/error.h"
#include "uce/core/atomic_file.h"

namespace uce::model {
namespace {

// ---- values on the unpickler stack ------------------------------------------------------
struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor, Mark };
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                   // String; Global "module.name"
  std::vector<ValuePtr> items;                     // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> dict; // Dict (insertion order)
  at::Tensor tensor;                               // Storage (1-D, typed) or Tensor
};

ValuePtr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

// Maps a storage global to its dtype.
bool storageDtype(const std::string& global, at::ScalarType& t) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},     {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},     {"torch.BoolStorage", at::kBool}};
  auto it = types.find(global);
  if (it == types.end()) return false;
  t = it->second;
  return true;
}

class Unpickler {
 public:
  // loadStorage(key, dtype, numel): the bytes of data/<key> in a zip archive (null for plain
  // pickles, where any persistent id is an error).
  using StorageLoader = std::function<at::Tensor(const std::string&, at::ScalarType, int64_t)>;

  Unpickler(std::string file, const char* data, size_t size, StorageLoader loader)
      : file_(std::move(file)), p_(data), end_(data + size), loader_(std::move(loader)) {}

  ValuePtr run() {
    while (true) {
      uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                            // PROTO
        case 0x95: take(8); break;                         // FRAME
        case '.': return pop();                            // STOP
        case '(': push(make(Value::Kind::Mark)); break;    // MARK
        case 'N': push(make(Value::Kind::None)); break;    // NONE
        case 0x88: push(boolean(true)); break;             // NEWTRUE
        case 0x89: push(boolean(false)); break;            // NEWFALSE
        case 'J': push(integer(le<int32_t>())); break;     // BININT
        case 'K': push(integer(u8())); break;              // BININT1
        case 'M': push(integer(le<uint16_t>())); break;    // BININT2
        case 0x8a: {                                       // LONG1
          size_t n = u8();
          push(integer(longBytes(n)));
          break;
        }
        case 'G': {                                        // BINFLOAT (big-endian double)
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | u8();
          double d;
          std::memcpy(&d, &bits, 8);
          auto v = make(Value::Kind::Float);
          v->f = d;
          push(v);
          break;
        }
        case 'X': push(string(le<uint32_t>())); break;     // BINUNICODE
        case 0x8c: push(string(u8())); break;              // SHORT_BINUNICODE
        case 'U': push(string(u8())); break;               // SHORT_BINSTRING
        case 'T': push(string(le<uint32_t>())); break;     // BINSTRING
        case ')': push(make(Value::Kind::Tuple)); break;   // EMPTY_TUPLE
        case ']': push(make(Value::Kind::List)); break;    // EMPTY_LIST
        case '}': push(make(Value::Kind::Dict)); break;    // EMPTY_DICT
        case 0x85: tupleN(1); break;                       // TUPLE1
        case 0x86: tupleN(2); break;                       // TUPLE2
        case 0x87: tupleN(3); break;                       // TUPLE3
        case 't': {                                        // TUPLE
          auto v = make(Value::Kind::Tuple);
          v->items = popToMark();
          push(v);
          break;
        }
        case 'l': {                                        // LIST
          auto v = make(Value::Kind::List);
          v->items = popToMark();
          push(v);
          break;
        }
        case 'a': {                                        // APPEND
          auto x = pop();
          top(Value::Kind::List)->items.push_back(x);
          break;
        }
        case 'e': {                                        // APPENDS
          auto xs = popToMark();
          auto& l = top(Value::Kind::List)->items;
          l.insert(l.end(), xs.begin(), xs.end());
          break;
        }
        case 's': {                                        // SETITEM
          auto v = pop();
          auto k = pop();
          top(Value::Kind::Dict)->dict.emplace_back(k, v);
          break;
        }
        case 'u': {                                        // SETITEMS
          auto xs = popToMark();
          if (xs.size() % 2) bad("odd number of items in SETITEMS");
          auto d = top(Value::Kind::Dict);
          for (size_t k = 0; k < xs.size(); k += 2) d->dict.emplace_back(xs[k], xs[k + 1]);
          break;
        }
        case 'q': memo_[u8()] = peek(); break;             // BINPUT
        case 'r': memo_[le<uint32_t>()] = peek(); break;   // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = peek(); break;    // MEMOIZE
        case 'h': push(memo(u8())); break;                 // BINGET
        case 'j': push(memo(le<uint32_t>())); break;       // LONG_BINGET
        case 'c': {                                        // GLOBAL "module\nname\n"
          std::string mod = line(), name = line();
          push(global(mod + "." + name));
          break;
        }
        case 0x93: {                                       // STACK_GLOBAL
          auto name = pop(), mod = pop();
          if (name->kind != Value::Kind::String || mod->kind != Value::Kind::String)
            bad("STACK_GLOBAL without strings");
          push(global(mod->s + "." + name->s));
          break;
        }
        case 'R': {                                        // REDUCE
          auto args = pop();
          auto fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 'b': pop(); break;                            // BUILD: state (e.g. _metadata) ignored
        case 'Q': {                                        // BINPERSID
          auto pid = pop();
          push(persistent(pid));
          break;
        }
        default: {
          char buf[64];
          std::snprintf(buf, sizeof buf, "unsupported pickle opcode 0x%02x", op);
          bad(buf);
        }
      }
    }
  }

 private:
  [[noreturn]] void bad(const std::string& why) const {
    uce::fail(uce::ErrorKind::Format, file_,
              "not a UCE/PyTorch file this program reads (" + why + ")");
  }
  uint8_t u8() {
    if (p_ >= end_) bad("pickle ends early");
    return static_cast<uint8_t>(*p_++);
  }
  const char* take(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) bad("pickle ends early");
    const char* q = p_;
    p_ += n;
    return q;
  }
  template <typename T>
  T le() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  int64_t longBytes(size_t n) {
    if (n > 8) bad("integer too large");
    const char* q = take(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(q[k])) << (8 * k);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(q[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);
    return static_cast<int64_t>(v);
  }
  std::string line() {
    const char* start = p_;
    while (p_ < end_ && *p_ != '\n') ++p_;
    if (p_ >= end_) bad("pickle ends early");
    return std::string(start, p_++);
  }
  ValuePtr boolean(bool b) { auto v = make(Value::Kind::Bool); v->b = b; return v; }
  ValuePtr integer(int64_t i) { auto v = make(Value::Kind::Int); v->i = i; return v; }
  ValuePtr string(size_t n) {
    auto v = make(Value::Kind::String);
    v->s.assign(take(n), n);
    return v;
  }
  ValuePtr global(const std::string& name) {
    static const char* allowed[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                    "torch._utils._rebuild_parameter"};
    bool ok = false;
    for (const char* a : allowed) ok = ok || name == a;
    at::ScalarType t;
    ok = ok || storageDtype(name, t);
    if (!ok) bad("refusing to load global '" + name + "'");
    auto v = make(Value::Kind::Global);
    v->s = name;
    return v;
  }
  void push(ValuePtr v) {
    if (stack_.size() > 1000000) bad("pickle stack too deep");
    stack_.push_back(std::move(v));
  }
  ValuePtr pop() {
    if (stack_.empty() || stack_.back()->kind == Value::Kind::Mark) bad("pickle stack underflow");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr peek() {
    if (stack_.empty()) bad("pickle stack underflow");
    return stack_.back();
  }
  ValuePtr top(Value::Kind k) {
    auto v = peek();
    if (v->kind != k) bad("unexpected object on the pickle stack");
    return v;
  }
  ValuePtr memo(uint32_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) bad("reference to an unknown memo entry");
    return it->second;
  }
  std::vector<ValuePtr> popToMark() {
    std::vector<ValuePtr> out;
    while (true) {
      if (stack_.empty()) bad("MARK missing");
      auto v = stack_.back();
      stack_.pop_back();
      if (v->kind == Value::Kind::Mark) break;
      out.push_back(v);
    }
    return {out.rbegin(), out.rend()};
  }
  void tupleN(size_t n) {
    auto v = make(Value::Kind::Tuple);
    v->items.resize(n);
    for (size_t k = n; k-- > 0;) v->items[k] = pop();
    push(v);
  }
  static std::vector<int64_t> ints(const ValuePtr& t, const Unpickler& self) {
    if (t->kind != Value::Kind::Tuple) self.bad("tensor size/stride is not a tuple");
    std::vector<int64_t> out;
    for (const auto& x : t->items) {
      if (x->kind != Value::Kind::Int) self.bad("tensor size/stride is not integers");
      out.push_back(x->i);
    }
    return out;
  }
  ValuePtr reduce(const ValuePtr& fn, const ValuePtr& args) {
    if (fn->kind != Value::Kind::Global || args->kind != Value::Kind::Tuple) bad("bad REDUCE");
    if (fn->s == "collections.OrderedDict") return make(Value::Kind::Dict);
    if (fn->s == "torch._utils._rebuild_parameter") {
      if (args->items.empty() || args->items[0]->kind != Value::Kind::Tensor) bad("bad parameter");
      return args->items[0];
    }
    if (fn->s == "torch._utils._rebuild_tensor_v2") {
      if (args->items.size() < 4 || args->items[0]->kind != Value::Kind::Storage ||
          args->items[1]->kind != Value::Kind::Int)
        bad("bad tensor record");
      const at::Tensor& storage = args->items[0]->tensor;
      int64_t offset = args->items[1]->i;
      std::vector<int64_t> size = ints(args->items[2], *this), stride = ints(args->items[3], *this);
      if (size.size() != stride.size()) bad("tensor size and stride differ in length");
      int64_t last = offset;  // highest element index touched, must lie inside the storage
      for (size_t k = 0; k < size.size(); ++k) {
        if (size[k] < 0 || stride[k] < 0) bad("negative tensor size or stride");
        if (size[k] == 0) { last = -1; break; }
        last += (size[k] - 1) * stride[k];
      }
      if (offset < 0 || last >= storage.numel()) bad("tensor lies outside its storage");
      auto v = make(Value::Kind::Tensor);
      v->tensor = storage.as_strided(size, stride, offset);
      return v;
    }
    bad("cannot call '" + fn->s + "'");
  }
  ValuePtr persistent(const ValuePtr& pid) {
    // ('storage', <torch.XStorage>, key, location, numel)
    if (!loader_) bad("persistent reference in a plain pickle");
    if (pid->kind != Value::Kind::Tuple || pid->items.size() < 5 ||
        pid->items[0]->kind != Value::Kind::String || pid->items[0]->s != "storage" ||
        pid->items[1]->kind != Value::Kind::Global || pid->items[2]->kind != Value::Kind::String ||
        pid->items[4]->kind != Value::Kind::Int)
      bad("unexpected persistent id");
    at::ScalarType t;
    if (!storageDtype(pid->items[1]->s, t)) bad("unknown storage type " + pid->items[1]->s);
    const std::string& key = pid->items[2]->s;
    auto it = storages_.find(key);
    if (it == storages_.end()) it = storages_.emplace(key, loader_(key, t, pid->items[4]->i)).first;
    auto v = make(Value::Kind::Storage);
    v->tensor = it->second;
    return v;
  }

  std::string file_;
  const char* p_;
  const char* end_;
  StorageLoader loader_;
  std::vector<ValuePtr> stack_;
  std::map<uint32_t, ValuePtr> memo_;
  std::map<std::string, at::Tensor> storages_;
};

// Unpickles data.pkl of a torch.save zip archive.
ValuePtr loadArchive(const std::string& path) {
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) uce::fail(uce::ErrorKind::Io, path, "cannot open file");
    char sig[2] = {};
    in.read(sig, 2);
    if (in.gcount() < 2 || sig[0] != 'P' || sig[1] != 'K')
      uce::fail(uce::ErrorKind::Format, path,
                "not a PyTorch zip archive (saved with torch.save, PyTorch >= 1.6)");
  }
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const std::exception& e) {
    uce::fail(uce::ErrorKind::Truncated, path, std::string("corrupt or truncated PyTorch archive: ") + e.what());
  }
  if (!reader->hasRecord("data.pkl"))
    uce::fail(uce::ErrorKind::Format, path, "PyTorch archive without data.pkl");
  auto [pkl, pklSize] = reader->getRecord("data.pkl");
  auto loader = [&](const std::string& key, at::ScalarType t, int64_t numel) -> at::Tensor {
    std::string rec = "data/" + key;
    if (!reader->hasRecord(rec)) uce::fail(uce::ErrorKind::Truncated, path, "missing tensor record " + rec);
    auto [ptr, bytes] = reader->getRecord(rec);
    const size_t need = static_cast<size_t>(numel) * at::elementSize(t);
    if (numel < 0 || bytes < need)
      uce::fail(uce::ErrorKind::Truncated, path, "tensor record " + rec + " is shorter than its size");
    auto holder = std::make_shared<at::DataPtr>(std::move(ptr));
    return at::from_blob(holder->get(), {numel}, [holder](void*) mutable { holder.reset(); },
                         at::TensorOptions().dtype(t));
  };
  try {
    Unpickler u(path, static_cast<const char*>(pkl.get()), pklSize, loader);
    return u.run();
  } catch (const uce::Error&) {
    throw;
  } catch (const std::exception& e) {
    uce::fail(uce::ErrorKind::Truncated, path, std::string("corrupt PyTorch archive: ") + e.what());
  }
}

std::string describe(const ValuePtr& v) {
  switch (v->kind) {
    case Value::Kind::Dict: return "a dict";
    case Value::Kind::Tensor: return "a tensor";
    case Value::Kind::List: return "a list";
    case Value::Kind::Tuple: return "a tuple";
    default: return "a scalar";
  }
}

}  // namespace

NamedTensors loadTensorDict(const std::string& path) {
  ValuePtr root = loadArchive(path);
  // Some checkpoints wrap the state dict: {"state_dict": {...}} or {"model": {...}}.
  if (root->kind == Value::Kind::Dict)
    for (const auto& kv : root->dict)
      if (kv.first->kind == Value::Kind::String &&
          (kv.first->s == "state_dict" || kv.first->s == "model") && kv.second->kind == Value::Kind::Dict)
        root = kv.second;
  if (root->kind != Value::Kind::Dict)
    uce::fail(uce::ErrorKind::Format, path, "expected a dict of tensors, found " + describe(root));
  NamedTensors out;
  out.reserve(root->dict.size());
  for (const auto& kv : root->dict) {
    if (kv.first->kind != Value::Kind::String)
      uce::fail(uce::ErrorKind::Format, path, "dict key is not a string");
    if (kv.second->kind != Value::Kind::Tensor)
      uce::fail(uce::ErrorKind::Format, path, "value of '" + kv.first->s + "' is not a tensor");
    out.emplace_back(kv.first->s, kv.second->tensor);
  }
  return out;
}

at::Tensor loadTensor(const std::string& path) {
  ValuePtr root = loadArchive(path);
  if (root->kind != Value::Kind::Tensor)
    uce::fail(uce::ErrorKind::Format, path, "expected one tensor, found " + describe(root));
  return root->tensor;
}

std::vector<std::pair<std::string, int64_t>> loadStrIntPickle(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) uce::fail(uce::ErrorKind::Io, path, "cannot open file");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 2 || static_cast<uint8_t>(bytes[0]) != 0x80)
    uce::fail(uce::ErrorKind::Format, path, "not a Python pickle (protocol 2 or newer)");
  Unpickler u(path, bytes.data(), bytes.size(), nullptr);
  ValuePtr root = u.run();
  if (root->kind != Value::Kind::Dict)
    uce::fail(uce::ErrorKind::Format, path, "expected a dict of species -> offset, found " + describe(root));
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& kv : root->dict) {
    if (kv.first->kind != Value::Kind::String || kv.second->kind != Value::Kind::Int)
      uce::fail(uce::ErrorKind::Format, path, "expected str -> int entries");
    out.emplace_back(kv.first->s, kv.second->i);
  }
  return out;
}

namespace {

// torch.save's format, written directly: a zip archive (PyTorch's own writer) holding
// data.pkl, a protocol-2 pickle in which each tensor is
//   torch._utils._rebuild_tensor_v2(<persistent id ('storage', torch.XStorage, key, 'cpu',
//   numel)>, offset, size, stride, requires_grad=False, OrderedDict())
// and data/<key>, the storage's raw little-endian bytes. Only these globals appear, so
// torch.load(weights_only=True) and restricted unpicklers (ours included) accept the file.
class TorchPickle {
 public:
  void proto() { op('\x80'); op('\x02'); }
  void stop() { op('.'); }
  void mark() { op('('); }
  void tuple() { op('t'); }
  void emptyTuple() { op(')'); }
  void emptyDict() { op('}'); }
  void setItems() { op('u'); }
  void reduce() { op('R'); }
  void binPersId() { op('Q'); }
  void newFalse() { op('\x89'); }
  void global(const std::string& module, const std::string& name) { op('c'); out_ += module + "\n" + name + "\n"; }
  void str(const std::string& v) {
    op('X');
    u32(static_cast<uint32_t>(v.size()));
    out_ += v;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      out_.push_back(static_cast<char>(v));
    } else if (v >= 0 && v < 65536) {
      op('M');
      out_.push_back(static_cast<char>(v & 0xff));
      out_.push_back(static_cast<char>((v >> 8) & 0xff));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {  // LONG1: 8 bytes little-endian two's complement
      op('\x8a');
      out_.push_back(8);
      for (int k = 0; k < 8; ++k) out_.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * k)) & 0xff));
    }
  }
  // A tensor (contiguous, CPU) whose storage is record data/<key>.
  void tensor(const at::Tensor& t, const std::string& key) {
    global("torch._utils", "_rebuild_tensor_v2");
    mark();
    mark();  // persistent id
    str("storage");
    global("torch", storageName(t.scalar_type()));
    str(key);
    str("cpu");
    integer(t.numel());
    tuple();
    binPersId();
    integer(0);
    mark();
    for (int64_t d : t.sizes()) integer(d);
    tuple();
    mark();
    for (int64_t d : t.strides()) integer(d);
    tuple();
    newFalse();
    global("collections", "OrderedDict");
    emptyTuple();
    reduce();
    tuple();
    reduce();
  }
  const std::string& bytes() const { return out_; }

 private:
  void op(char c) { out_.push_back(c); }
  void u32(uint32_t v) {
    for (int k = 0; k < 4; ++k) out_.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
  }
  static std::string storageName(at::ScalarType t) {
    switch (t) {
      case at::kFloat: return "FloatStorage";
      case at::kDouble: return "DoubleStorage";
      case at::kHalf: return "HalfStorage";
      case at::kBFloat16: return "BFloat16Storage";
      case at::kLong: return "LongStorage";
      case at::kInt: return "IntStorage";
      case at::kShort: return "ShortStorage";
      case at::kChar: return "CharStorage";
      case at::kByte: return "ByteStorage";
      case at::kBool: return "BoolStorage";
      default: uce::fail(uce::ErrorKind::InvalidArgument, "", std::string("cannot save tensors of type ") + at::toString(t));
    }
  }
  std::string out_;
};

// The zip archive of a pickle and its storages, handed to `write` piece by piece. An error
// thrown by `write` (a full disk) is held until the archive is finished and thrown then: it must
// not unwind through the zip writer's C code.
void torchArchive(const std::string& pickle, const std::vector<at::Tensor>& storages, const uce::ByteSink& write) {
  std::exception_ptr failed;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* buf, size_t n) -> size_t {
      if (!failed) {
        try {
          write(buf, n);
        } catch (...) {
          failed = std::current_exception();
        }
      }
      return n;
    });
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    for (size_t k = 0; k < storages.size(); ++k)
      writer.writeRecord("data/" + std::to_string(k), storages[k].data_ptr(), storages[k].nbytes());
    writer.writeEndOfFile();
  }
  if (failed) std::rethrow_exception(failed);
}

std::string torchArchive(const std::string& pickle, const std::vector<at::Tensor>& storages) {
  std::string out;
  torchArchive(pickle, storages, [&out](const void* buf, size_t n) { out.append(static_cast<const char*>(buf), n); });
  return out;
}

// The pickle of a tensor dict, and its storages (CPU, contiguous).
std::string tensorDictPickle(const NamedTensors& tensors, std::vector<at::Tensor>& storages) {
  TorchPickle p;
  p.proto();
  p.emptyDict();
  if (!tensors.empty()) {
    p.mark();
    for (const auto& kv : tensors) {
      storages.push_back(kv.second.detach().cpu().contiguous());
      p.str(kv.first);
      p.tensor(storages.back(), std::to_string(storages.size() - 1));
    }
    p.setItems();
  }
  p.stop();
  return p.bytes();
}

}  // namespace

std::string torchSaveTensorDict(const NamedTensors& tensors) {
  std::vector<at::Tensor> storages;
  const std::string pickle = tensorDictPickle(tensors, storages);
  return torchArchive(pickle, storages);
}

std::string torchSaveTensor(const at::Tensor& tensor) {
  std::vector<at::Tensor> storages{tensor.detach().cpu().contiguous()};
  TorchPickle p;
  p.proto();
  p.tensor(storages[0], "0");
  p.stop();
  return torchArchive(p.bytes(), storages);
}

void saveTensorDict(const NamedTensors& tensors, const std::string& path) {
  std::vector<at::Tensor> storages;
  const std::string pickle = tensorDictPickle(tensors, storages);
  // Streamed to the file: the archive never sits in memory (3 GB of token table at the
  // release's scale).
  uce::writeFileAtomic(path, [&](const uce::ByteSink& write) { torchArchive(pickle, storages, write); });
}

}  // namespace uce::model
