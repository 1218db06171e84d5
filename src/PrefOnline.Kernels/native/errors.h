// Errors inside the library are C++ exceptions carrying a message (pk::check); at the C boundary
// every export catches everything (PK_TRY / PK_CATCH), stores the message in a thread-local string
// (pk_last_error) and returns its failure value. See prefonline_kernels.h.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace pk {

class Error : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

// Throws Error with the arguments streamed one after another when the condition is false:
//   check(n >= 1, "sequence ", p, " is empty");
template <class... Parts>
inline void check(bool condition, Parts&&... parts) {
    if (condition) return;
    std::ostringstream message;
    (message << ... << std::forward<Parts>(parts));
    throw Error(message.str());
}

void set_error(const char* message) noexcept;

}  // namespace pk

#define PK_TRY try {
#define PK_CATCH(failure_value)                           \
    }                                                     \
    catch (const std::bad_alloc&) {                       \
        pk::set_error("out of memory");                   \
        return failure_value;                             \
    }                                                     \
    catch (const std::exception& e) {                     \
        pk::set_error(e.what());                          \
        return failure_value;                             \
    }                                                     \
    catch (...) {                                         \
        pk::set_error("unknown native error");            \
        return failure_value;                             \
    }
