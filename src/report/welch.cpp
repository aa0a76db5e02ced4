// Welch's t-test; the incomplete beta function by its continued fraction (modified Lentz).
#include "src/report/welch.h"

#include <cmath>
#include <limits>

namespace muonlab {

double mean_of(const std::vector<double>& values) {
  if (values.empty()) return NAN;
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double std_of(const std::vector<double>& values) {
  if (values.size() < 2) return NAN;  // one seed says nothing about the spread
  const double m = mean_of(values);
  double squares = 0;
  for (double v : values) squares += (v - m) * (v - m);
  return std::sqrt(squares / static_cast<double>(values.size() - 1));
}

namespace {

// The continued fraction of I_x(a, b), convergent for x < (a + 1) / (a + b + 2).
double beta_fraction(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 500; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    for (int half = 0; half < 2; ++half) {
      d = 1 + aa * d;
      if (std::fabs(d) < tiny) d = tiny;
      c = 1 + aa / c;
      if (std::fabs(c) < tiny) c = tiny;
      d = 1 / d;
      const double delta = d * c;
      h *= delta;
      if (half == 1 && std::fabs(delta - 1) < 1e-15) return h;
      aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    }
  }
  return h;
}

}  // namespace

double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
  return 1 - front * beta_fraction(b, a, 1 - x) / b;
}

double student_t_two_sided_p(double t, double dof) {
  if (!std::isfinite(t)) return std::isnan(t) ? NAN : 0.0;
  return incomplete_beta(dof / 2, 0.5, dof / (dof + t * t));
}

WelchResult welch_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  WelchResult r;
  if (a.size() < 2 || b.size() < 2) return r;
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  const double va = std::pow(std_of(a), 2) / na, vb = std::pow(std_of(b), 2) / nb;
  r.se = std::sqrt(va + vb);
  r.valid = true;
  const double diff = mean_of(a) - mean_of(b);
  if (r.se == 0) {
    r.t = diff == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), diff);
    r.dof = na + nb - 2;
    r.p = diff == 0 ? 1 : 0;
    return r;
  }
  r.t = diff / r.se;
  r.dof = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
  r.p = student_t_two_sided_p(r.t, r.dof);
  return r;
}

}  // namespace muonlab
