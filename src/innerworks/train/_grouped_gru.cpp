// K stacked GRUs over a whole sequence: the forward and the backward of innerworks.train._grouped._GRUSequence,
// each one call. The matmuls stay ATen calls (bmm / baddbmm per step, one bmm for the weight gradient); the
// elementwise work of a step is one vectorised loop per member. Layouts (K-major, so member k's rows of all
// steps are one block): states hs [K, T+1, B, H]; saved gates sv [K, T, B, 5H] = [r, z, c_y, c_z, c_r];
// input rows src [R, 4H] = [a (2H), c, e] gathered by idx [T, K*B]. See _grouped.py for the algebra.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <vector>

using at::vec::Vectorized;

namespace {

template <typename T>
inline Vectorized<T> sigmoid(Vectorized<T> x) {  // as ATen's CPU sigmoid: 1 / (1 + exp(-x))
  return (Vectorized<T>(T(1)) + (Vectorized<T>(T(0)) - x).exp()).reciprocal();
}

#if defined(CPU_CAPABILITY_AVX2)
// float sigmoid with an inlined exp (Cephes' degree-6 polynomial, ~1 ulp) instead of a call per vector (three
// sigmoids per element and step). An exact division, not a refined reciprocal estimate: that one had a one-sided
// error and no speed gain. Inputs are clamped to |x| <= 87, where the result is 0 or 1 to float precision.
template <>
inline Vectorized<float> sigmoid(Vectorized<float> xv) {
  const __m256 a = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), __m256(xv)),
                                               _mm256_set1_ps(-87.0f)), _mm256_set1_ps(87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), a);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 ex = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), ex));
}
#endif

template <typename T>
inline Vectorized<T> load(const T* p, int64_t n) {
  return n == Vectorized<T>::size() ? Vectorized<T>::loadu(p) : Vectorized<T>::loadu(p, n);
}

template <typename T>
inline void store(Vectorized<T> v, T* p, int64_t n) {
  if (n == Vectorized<T>::size()) v.store(p); else v.store(p, n);
}

// One forward step of member k's B rows: gates from gh = h M^T [B, 3H] and the gathered input rows.
template <typename T>
void forward_rows(const T* src, const int64_t* idx, const T* gh, const T* h, T* hn, T* sv, int64_t B, int64_t H) {
  using V = Vectorized<T>;
  const V one(T(1)), two(T(2)), half(T(0.5));
  for (int64_t b = 0; b < B; ++b) {
    const T* u = src + idx[b] * 4 * H;
    const T* g = gh + b * 3 * H;
    const T* hb = h + b * H;
    T* hnb = hn + b * H;
    T* s = sv ? sv + b * 5 * H : nullptr;
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t n = std::min<int64_t>(V::size(), H - j);
      const V r = sigmoid(load(u + j, n) + load(g + j, n));
      const V z = sigmoid(load(u + H + j, n) + load(g + H + j, n));
      const V g_n = load(u + 2 * H + j, n) + load(g + 2 * H + j, n);
      const V nv = two * sigmoid(load(u + 3 * H + j, n) + r * g_n) - one;
      const V hv = load(hb + j, n);
      const V out = nv + z * (hv - nv);
      store(out, hnb + j, n);
      if (s) {
        store(r, s + j, n);
        store(z, s + H + j, n);
        store(half - half * nv * nv, s + 2 * H + j, n);   // dn/dy
        store(out - nv, s + 3 * H + j, n);                 // d h'/d z_pre / (1 - z)
        store((r - r * r) * g_n, s + 4 * H + j, n);        // dy/d r_pre
      }
    }
  }
}

// One backward step of member k's B rows: du = [d r_pre, d z_pre, d m] (the 3H the matmuls need), the carried
// z * dh, and (when wanted) the input-row gradient [du, d y] added to its gathered row.
template <typename T>
void backward_rows(const T* sv, const T* dout, const T* dh, T* zdh, T* du, T* dsrc, const int64_t* idx,
                   int64_t B, int64_t H) {
  using V = Vectorized<T>;
  for (int64_t b = 0; b < B; ++b) {
    const T* s = sv + b * 5 * H;
    T* d = du + b * 3 * H;
    T* ds = dsrc ? dsrc + idx[b] * 4 * H : nullptr;
    for (int64_t j = 0; j < H; j += V::size()) {
      const int64_t n = std::min<int64_t>(V::size(), H - j);
      const V dhv = load(dh + b * H + j, n) + load(dout + b * H + j, n);
      const V zd = dhv * load(s + H + j, n);
      const V dn = dhv - zd;
      const V dy = dn * load(s + 2 * H + j, n);
      const V dr = dy * load(s + 4 * H + j, n);
      const V dz = dn * load(s + 3 * H + j, n);
      const V dm = dy * load(s + j, n);
      store(zd, zdh + b * H + j, n);
      store(dr, d + j, n);
      store(dz, d + H + j, n);
      store(dm, d + 2 * H + j, n);
      if (ds) {
        store(load(ds + j, n) + dr, ds + j, n);
        store(load(ds + H + j, n) + dz, ds + H + j, n);
        store(load(ds + 2 * H + j, n) + dm, ds + 2 * H + j, n);
        store(load(ds + 3 * H + j, n) + dy, ds + 3 * H + j, n);
      }
    }
  }
}

}  // namespace

// Returns {hs [K, T+1, B, H], sv [K, T, B, 5H] (empty without grad)}.
std::vector<at::Tensor> gru_forward(const at::Tensor& src_in, const at::Tensor& idx_in, const at::Tensor& h0,
                                    const at::Tensor& m, bool keep) {
  const at::Tensor src = src_in.contiguous(), idx = idx_in.contiguous();
  const int64_t steps = idx.size(0), K = h0.size(0), B = h0.size(1), H = h0.size(2);
  at::Tensor m_t = m.transpose(1, 2).contiguous();
  at::Tensor hs = at::empty({K, steps + 1, B, H}, src.options());
  hs.select(1, 0).copy_(h0);
  at::Tensor sv = keep ? at::empty({K, steps, B, 5 * H}, src.options()) : at::empty({0}, src.options());
  at::Tensor gh = at::empty({K, B, 3 * H}, src.options());
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "gru_forward", [&] {
    const scalar_t* src_p = src.data_ptr<scalar_t>();
    scalar_t* hs_p = hs.data_ptr<scalar_t>();
    scalar_t* sv_p = keep ? sv.data_ptr<scalar_t>() : nullptr;
    const scalar_t* gh_p = gh.data_ptr<scalar_t>();
    for (int64_t t = 0; t < steps; ++t) {
      at::bmm_out(gh, hs.select(1, t), m_t);
      const int64_t* idx_t = idx.data_ptr<int64_t>() + t * K * B;
      at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) {
          scalar_t* h = hs_p + (k * (steps + 1) + t) * B * H;
          forward_rows<scalar_t>(src_p, idx_t + k * B, gh_p + k * B * 3 * H, h, h + B * H,
                                 sv_p ? sv_p + (k * steps + t) * B * 5 * H : nullptr, B, H);
        }
      });
    }
  });
  return {hs, sv};
}

// Returns {d src [rows, 4H] (empty when not wanted), d h0 [K, B, H], d m [K, 3H, H]}.
std::vector<at::Tensor> gru_backward(const at::Tensor& dout_tkbh, const at::Tensor& idx_in, const at::Tensor& hs,
                                     const at::Tensor& sv, const at::Tensor& m_in, int64_t rows, bool want_src) {
  const at::Tensor idx = idx_in.contiguous(), m = m_in.contiguous();
  // dout [T, K, B, H] is read in place when each (t, k) block is one dense [B, H] block
  const bool dense = dout_tkbh.stride(3) == 1 && dout_tkbh.stride(2) == dout_tkbh.size(3);
  const at::Tensor dout = dense ? dout_tkbh : dout_tkbh.contiguous();
  const int64_t dout_t = dout.stride(0), dout_k = dout.stride(1);
  const int64_t K = hs.size(0), steps = hs.size(1) - 1, B = hs.size(2), H = hs.size(3);
  at::Tensor du = at::empty({K, steps, B, 3 * H}, hs.options());
  at::Tensor dh = at::zeros({K, B, H}, hs.options()), zdh = at::empty({K, B, H}, hs.options());
  at::Tensor dsrc = want_src ? at::zeros({rows, 4 * H}, hs.options()) : at::empty({0}, hs.options());
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_backward", [&] {
    const scalar_t* sv_p = sv.data_ptr<scalar_t>();
    const scalar_t* dout_p = dout.data_ptr<scalar_t>();
    scalar_t* du_p = du.data_ptr<scalar_t>();
    const scalar_t* dh_p = dh.data_ptr<scalar_t>();
    scalar_t* zdh_p = zdh.data_ptr<scalar_t>();
    scalar_t* ds_p = want_src ? dsrc.data_ptr<scalar_t>() : nullptr;
    for (int64_t t = steps - 1; t >= 0; --t) {
      const int64_t* idx_t = idx.data_ptr<int64_t>() + t * K * B;
      at::parallel_for(0, K, 1, [&](int64_t k0, int64_t k1) {  // members touch disjoint src rows
        for (int64_t k = k0; k < k1; ++k) {
          const int64_t kt = k * steps + t;
          backward_rows<scalar_t>(sv_p + kt * B * 5 * H, dout_p + t * dout_t + k * dout_k, dh_p + k * B * H,
                                  zdh_p + k * B * H, du_p + kt * B * 3 * H, ds_p, idx_t + k * B, B, H);
        }
      });
      at::baddbmm_out(dh, zdh, du.select(1, t), m);
    }
  });
  // d m = sum_t du_t^T h_t: one matmul over all steps (K-major layouts make both operands plain views)
  at::Tensor h_prev = hs.narrow(1, 0, steps).reshape({K, steps * B, H});
  at::Tensor dm = at::bmm(du.view({K, steps * B, 3 * H}).transpose(1, 2), h_prev);
  return {dsrc, dh, dm};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("forward", &gru_forward, "grouped GRU sequence forward");
  mod.def("backward", &gru_backward, "grouped GRU sequence backward");
}
