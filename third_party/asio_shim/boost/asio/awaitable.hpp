// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>; under -std=c++20
// with gcc 12 that no longer comes in transitively. Include it, then the real header.
#include <utility>
#include_next <boost/asio/awaitable.hpp>
