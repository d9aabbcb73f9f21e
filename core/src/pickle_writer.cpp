#include "uce/core/pickle_writer.h"

#include <algorithm>
#include <cstdint>

namespace uce {

namespace {

// Opcodes used by protocol 2 for a dict of str -> int.
constexpr char kProto = '\x80', kEmptyDict = '}', kMark = '(', kBinUnicode = 'X',
               kBinInt1 = 'K', kBinInt2 = 'M', kBinInt = 'J', kLong1 = '\x8a',
               kSetItem = 's', kSetItems = 'u', kBinPut = 'q', kLongBinPut = 'r', kStop = '.';
constexpr size_t kBatchSize = 1000;  // CPython's _BATCHSIZE for SETITEMS

void putLE(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void memoize(std::string& out, uint32_t& memo) {
  if (memo < 256) {
    out.push_back(kBinPut);
    out.push_back(static_cast<char>(memo));
  } else {
    out.push_back(kLongBinPut);
    putLE(out, memo, 4);
  }
  ++memo;
}

void putInt(std::string& out, int64_t v) {
  if (v >= 0 && v <= 0xff) {
    out.push_back(kBinInt1);
    putLE(out, static_cast<uint64_t>(v), 1);
  } else if (v >= 0 && v <= 0xffff) {
    out.push_back(kBinInt2);
    putLE(out, static_cast<uint64_t>(v), 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    out.push_back(kBinInt);
    putLE(out, static_cast<uint64_t>(static_cast<uint32_t>(static_cast<int32_t>(v))), 4);
  } else {
    // LONG1: minimal little-endian two's complement, as CPython's encode_long.
    std::string bytes;
    const uint64_t u = static_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
    while (bytes.size() > 1) {
      const auto last = static_cast<unsigned char>(bytes.back());
      const auto prev = static_cast<unsigned char>(bytes[bytes.size() - 2]);
      if ((last == 0x00 && !(prev & 0x80)) || (last == 0xff && (prev & 0x80)))
        bytes.pop_back();
      else
        break;
    }
    out.push_back(kLong1);
    out.push_back(static_cast<char>(bytes.size()));
    out += bytes;
  }
}

}  // namespace

std::string pickleDictStrInt(const std::vector<std::pair<std::string, int64_t>>& items) {
  std::string out;
  uint32_t memo = 0;
  out.push_back(kProto);
  out.push_back('\x02');
  out.push_back(kEmptyDict);
  memoize(out, memo);
  for (size_t begin = 0; begin < items.size(); begin += kBatchSize) {
    const size_t end = std::min(items.size(), begin + kBatchSize);
    if (end - begin > 1) out.push_back(kMark);
    for (size_t i = begin; i < end; ++i) {
      out.push_back(kBinUnicode);
      putLE(out, items[i].first.size(), 4);
      out += items[i].first;
      memoize(out, memo);
      putInt(out, items[i].second);
    }
    out.push_back(end - begin > 1 ? kSetItems : kSetItem);
  }
  out.push_back(kStop);
  return out;
}

}  // namespace uce
