// Two-sample statistics for comparing optimizers over seeds: mean, sample standard deviation,
// and Welch's unequal-variance t-test with its two-sided p-value (Student's t distribution via
// the regularised incomplete beta function). No other tests, no multiple-comparison correction.
#pragma once
#include <vector>

namespace muonlab {

double mean_of(const std::vector<double>& values);
// Sample standard deviation (n - 1); NaN for fewer than 2 values.
double std_of(const std::vector<double>& values);

struct WelchResult {
  double t = 0;        // (mean_a - mean_b) / se
  double dof = 0;      // Welch-Satterthwaite degrees of freedom
  double p = 1;        // two-sided p-value
  double se = 0;       // standard error of the difference of the means
  bool valid = false;  // false when either side has fewer than 2 values
};
WelchResult welch_t_test(const std::vector<double>& a, const std::vector<double>& b);

// P(|T| > |t|) for Student's t with `dof` degrees of freedom.
double student_t_two_sided_p(double t, double dof);
// The regularised incomplete beta function I_x(a, b), 0 <= x <= 1.
double incomplete_beta(double a, double b, double x);

}  // namespace muonlab
