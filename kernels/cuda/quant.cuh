// Device-side reading of GGUF weight rows: dequantize8<T>() turns 8 consecutive values of a row
// (unit u: values 8u .. 8u + 7) into floats. Block layouts are ggml's, as kernels/cpu/dequantize.cc
// reads them; every kernel that reads weights goes through these.
#pragma once

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/tensor_type.h"

namespace weft::kernels::cuda {

__device__ __forceinline__ float load_half(const uint8_t* p) {
  const uint16_t bits = static_cast<uint16_t>(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(bits));
}

// Scale and min (6 bits each) of sub-block s of a Q4_K / Q5_K block's 12 packed bytes.
__device__ __forceinline__ void scale_min_k4(int s, const uint8_t* q, float* sc, float* m) {
  if (s < 4) {
    *sc = static_cast<float>(q[s] & 63);
    *m = static_cast<float>(q[s + 4] & 63);
  } else {
    *sc = static_cast<float>((q[s + 4] & 0xF) | ((q[s - 4] >> 6) << 4));
    *m = static_cast<float>((q[s + 4] >> 4) | ((q[s] >> 6) << 4));
  }
}

template <TensorType T>
struct Layout;
template <>
struct Layout<TensorType::kF32> {
  static constexpr int kElems = 1, kBytes = 4;
};
template <>
struct Layout<TensorType::kF16> {
  static constexpr int kElems = 1, kBytes = 2;
};
template <>
struct Layout<TensorType::kBF16> {
  static constexpr int kElems = 1, kBytes = 2;
};
template <>
struct Layout<TensorType::kQ4_0> {
  static constexpr int kElems = 32, kBytes = 18;
};
template <>
struct Layout<TensorType::kQ4_1> {
  static constexpr int kElems = 32, kBytes = 20;
};
template <>
struct Layout<TensorType::kQ8_0> {
  static constexpr int kElems = 32, kBytes = 34;
};
template <>
struct Layout<TensorType::kQ4_K> {
  static constexpr int kElems = 256, kBytes = 144;
};
template <>
struct Layout<TensorType::kQ5_K> {
  static constexpr int kElems = 256, kBytes = 176;
};
template <>
struct Layout<TensorType::kQ6_K> {
  static constexpr int kElems = 256, kBytes = 210;
};

// Values 8u .. 8u + 7 of `row` into y[0..8).
template <TensorType T>
__device__ __forceinline__ void dequantize8(const uint8_t* row, int u, float* y) {
  constexpr int E = Layout<T>::kElems, B = Layout<T>::kBytes;
  if constexpr (T == TensorType::kF32) {
    const float* p = reinterpret_cast<const float*>(row) + 8 * u;
#pragma unroll
    for (int k = 0; k < 8; ++k) y[k] = p[k];
  } else if constexpr (T == TensorType::kF16) {
    const __half* p = reinterpret_cast<const __half*>(row) + 8 * u;
#pragma unroll
    for (int k = 0; k < 8; ++k) y[k] = __half2float(p[k]);
  } else if constexpr (T == TensorType::kBF16) {
    const __nv_bfloat16* p = reinterpret_cast<const __nv_bfloat16*>(row) + 8 * u;
#pragma unroll
    for (int k = 0; k < 8; ++k) y[k] = __bfloat162float(p[k]);
  } else {
    const int first = 8 * u;
    const uint8_t* b = row + (first / E) * B;
    const int o = first % E;
    // Wide loads where the block layout aligns them: Q4_1's 20-byte blocks keep its quants 4-byte
    // aligned, Q4_0's and Q8_0's (18 and 34 bytes) 2-byte aligned.
    if constexpr (T == TensorType::kQ4_1) {
      const uint32_t dm = *reinterpret_cast<const uint32_t*>(b);
      const float d = __half2float(__ushort_as_half(static_cast<uint16_t>(dm & 0xFFFF)));
      const float m = __half2float(__ushort_as_half(static_cast<uint16_t>(dm >> 16)));
      const uint32_t* q = reinterpret_cast<const uint32_t*>(b + 4 + (o & 15));
      const uint32_t w0 = q[0], w1 = q[1];
      const int shift = o < 16 ? 0 : 4;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        y[k] = static_cast<float>((w0 >> (8 * k + shift)) & 0xF) * d + m;
        y[k + 4] = static_cast<float>((w1 >> (8 * k + shift)) & 0xF) * d + m;
      }
    } else if constexpr (T == TensorType::kQ4_0) {
      const float d = __half2float(*reinterpret_cast<const __half*>(b));
      const uint16_t* q = reinterpret_cast<const uint16_t*>(b + 2 + (o & 15));
      const int shift = o < 16 ? 0 : 4;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint16_t v = q[k];
        y[2 * k] = static_cast<float>((v >> shift) & 0xF) * d - 8.0f * d;
        y[2 * k + 1] = static_cast<float>((v >> (8 + shift)) & 0xF) * d - 8.0f * d;
      }
    } else if constexpr (T == TensorType::kQ8_0) {
      const float d = __half2float(*reinterpret_cast<const __half*>(b));
      const uint16_t* q = reinterpret_cast<const uint16_t*>(b + 2 + o);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint16_t v = q[k];
        y[2 * k] = static_cast<float>(static_cast<int8_t>(v & 0xFF)) * d;
        y[2 * k + 1] = static_cast<float>(static_cast<int8_t>(v >> 8)) * d;
      }
    } else if constexpr (T == TensorType::kQ4_K || T == TensorType::kQ5_K) {
      const float d = load_half(b), dmin = load_half(b + 2);
      const int g = o / 64, within = o % 64, s = 2 * g + (within >= 32 ? 1 : 0), l0 = within % 32;
      float sc, mn;
      scale_min_k4(s, b + 4, &sc, &mn);
      const float ds = d * sc, ms = dmin * mn;
      const uint8_t* q = b + (T == TensorType::kQ5_K ? 48 : 16) + 32 * g + l0;
      const int shift = within >= 32 ? 4 : 0;
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        int v = (q[k] >> shift) & 0xF;
        if constexpr (T == TensorType::kQ5_K) v += (b[16 + l0 + k] >> s) & 1 ? 16 : 0;
        y[k] = ds * static_cast<float>(v) - ms;
      }
    } else if constexpr (T == TensorType::kQ6_K) {
      const int half = o / 128, r = o % 128, quad = r / 32, l0 = r % 32, is = l0 / 16;
      const uint8_t* ql = b + 64 * half + l0 + (quad & 1 ? 32 : 0);
      const uint8_t* qh = b + 128 + 32 * half + l0;
      const int8_t sc = reinterpret_cast<const int8_t*>(b + 192)[8 * half + is + 2 * quad];
      const float ds = load_half(b + 208) * static_cast<float>(sc);
      const int lshift = quad >= 2 ? 4 : 0, hshift = 2 * quad;
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const int v = (((ql[k] >> lshift) & 0xF) | (((qh[k] >> hshift) & 3) << 4)) - 32;
        y[k] = ds * static_cast<float>(v);
      }
    }
  }
}

template <TensorType T>
using TypeTag = std::integral_constant<TensorType, T>;

// Calls f(TypeTag<T>{}) for the weight type `t`; false for a type without kernels.
template <class F>
bool dispatch_type(TensorType t, F&& f) {
  switch (t) {
    case TensorType::kF32:
      f(TypeTag<TensorType::kF32>{});
      return true;
    case TensorType::kF16:
      f(TypeTag<TensorType::kF16>{});
      return true;
    case TensorType::kBF16:
      f(TypeTag<TensorType::kBF16>{});
      return true;
    case TensorType::kQ4_0:
      f(TypeTag<TensorType::kQ4_0>{});
      return true;
    case TensorType::kQ4_1:
      f(TypeTag<TensorType::kQ4_1>{});
      return true;
    case TensorType::kQ8_0:
      f(TypeTag<TensorType::kQ8_0>{});
      return true;
    case TensorType::kQ4_K:
      f(TypeTag<TensorType::kQ4_K>{});
      return true;
    case TensorType::kQ5_K:
      f(TypeTag<TensorType::kQ5_K>{});
      return true;
    case TensorType::kQ6_K:
      f(TypeTag<TensorType::kQ6_K>{});
      return true;
    default:
      return false;
  }
}

}  // namespace weft::kernels::cuda
