#include "stripe_locks.hpp"

#include <bit>

namespace vram {

StripeLocks::StripeLocks(size_t stripes)
  : mask_(std::bit_ceil(stripes < 1 ? size_t{1} : stripes) - 1),
    stripes_(std::make_unique<Stripe[]>(mask_ + 1))
{
}

StripeLocks::Guard::Guard(const StripeLocks &locks, Mode mode, uint64_t first, uint64_t last)
  : locks_(locks), mode_(mode)
{
  const size_t n = locks.mask_ + 1;
  if (last - first + 1 >= n) {
    run1_end_ = n; // every stripe
  } else {
    const size_t a = first & locks.mask_, b = last & locks.mask_;
    if (a <= b) {
      run1_begin_ = a;
      run1_end_ = b + 1;
    } else { // wraps: 0..b, then a..n-1
      run1_end_ = b + 1;
      run2_begin_ = a;
      run2_end_ = n;
    }
  }
  for_each([this](std::shared_mutex &m) {
    if (mode_ == Mode::shared) m.lock_shared();
    else m.lock();
  });
}

StripeLocks::Guard::~Guard()
{
  for_each([this](std::shared_mutex &m) {
    if (mode_ == Mode::shared) m.unlock_shared();
    else m.unlock();
  });
}

void StripeLocks::Guard::for_each(auto &&f) const
{
  for (size_t i = run1_begin_; i < run1_end_; ++i)
    f(locks_.stripes_[i].mutex);
  for (size_t i = run2_begin_; i < run2_end_; ++i)
    f(locks_.stripes_[i].mutex);
}

} // namespace vram
