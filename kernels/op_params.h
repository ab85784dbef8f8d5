// Parameters of operators shared by the backend interface (backend.h) and the CUDA kernels'
// launchers (cuda/launch.h, compiled as C++17).
#pragma once

namespace weft::kernels {

/// Rotary embedding settings (cpu::RopeParams on the device).
struct Rope {
  int head_dim = 0;
  int rope_dims = 0;
  float base = 10000.0f;
  float freq_scale = 1.0f;
  const float* freq_factors = nullptr;  ///< backend memory, [rope_dims / 2], or null
  bool neox = false;
};

/// Attention geometry of one layer.
struct AttentionShape {
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;
};

}  // namespace weft::kernels
