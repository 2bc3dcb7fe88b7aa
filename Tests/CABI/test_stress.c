/* Stress for the thread sanitizer (filled in by the sanitizer work). */
#include "harness.h"

const test_case stress_tests[] = {{NULL, NULL, 0}};
const size_t stress_test_count = 0;
