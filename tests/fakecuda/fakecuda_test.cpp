// Tests for the fake CUDA driver. The library is dlopen()ed by absolute path
// and used only through the symbols it exports, as the plugin uses libcuda.
// Each test starts from a clean environment (no FAKECUDA_* variables), sets
// what it needs, calls cuInit, and ends with fakecuda_reset().
#include "entry_points.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#ifndef FAKECUDA_PATH
#error "FAKECUDA_PATH must name the built libcuda.so.1"
#endif

extern char **environ;

namespace {

constexpr std::uint64_t MiB = std::uint64_t{1} << 20;
constexpr std::uint64_t GiB = std::uint64_t{1} << 30;
constexpr CUdeviceptr kBase = 0x100000000000ULL;
constexpr CUdeviceptr kWindow = CUdeviceptr{1} << 40;
constexpr CUdeviceptr kVmmBase = 0x600000000000ULL; // cuMemAddressReserve's window
constexpr std::uint64_t kGran = 2 * MiB;            // VMM granularity
constexpr std::uint64_t TiB = std::uint64_t{1} << 40;

// Every entry point, looked up by its exported (versioned) name. The
// members are named after the exported symbols (entry_points.hpp), but
// for the older variants, named _v1.
struct Api {
  void *lib = nullptr;
#define FC_FN(name) decltype(&::name) name = nullptr
  FC_FN(cuInit);
  FC_FN(cuDriverGetVersion);
  FC_FN(cuGetErrorName);
  FC_FN(cuGetErrorString);
  FC_FN(cuDeviceGetCount);
  FC_FN(cuDeviceGet);
  FC_FN(cuDeviceGetName);
  FC_FN(cuDeviceGetUuid_v2);
  FC_FN(cuDeviceTotalMem_v2);
  FC_FN(cuDeviceGetAttribute);
  FC_FN(cuDeviceGetPCIBusId);
  FC_FN(cuDeviceGetByPCIBusId);
  FC_FN(cuDevicePrimaryCtxRetain);
  FC_FN(cuDevicePrimaryCtxRelease_v2);
  FC_FN(cuDevicePrimaryCtxSetFlags_v2);
  FC_FN(cuDevicePrimaryCtxGetState);
  FC_FN(cuCtxSetCurrent);
  FC_FN(cuCtxGetCurrent);
  FC_FN(cuCtxSynchronize);
  FC_FN(cuMemGetInfo_v2);
  FC_FN(cuMemAlloc_v2);
  FC_FN(cuMemFree_v2);
  FC_FN(cuMemHostAlloc);
  FC_FN(cuMemFreeHost);
  FC_FN(cuMemHostRegister_v2);
  FC_FN(cuMemHostUnregister);
  FC_FN(cuStreamCreate);
  FC_FN(cuStreamDestroy_v2);
  FC_FN(cuStreamSynchronize);
  FC_FN(cuEventCreate);
  FC_FN(cuEventDestroy_v2);
  FC_FN(cuEventRecord);
  FC_FN(cuEventSynchronize);
  FC_FN(cuMemcpyHtoDAsync_v2);
  FC_FN(cuMemcpyDtoHAsync_v2);
  FC_FN(cuMemcpyHtoD_v2);
  FC_FN(cuMemcpyDtoH_v2);
  FC_FN(cuMemcpy2DAsync_v2);
  FC_FN(cuMemsetD8Async);
  FC_FN(cuMemsetD8_v2);
  FC_FN(cuGetProcAddress_v2);
  FC_FN(cuMemGetAllocationGranularity);
  FC_FN(cuMemCreate);
  FC_FN(cuMemRelease);
  FC_FN(cuMemAddressReserve);
  FC_FN(cuMemAddressFree);
  FC_FN(cuMemMap);
  FC_FN(cuMemUnmap);
  FC_FN(cuMemSetAccess);
#undef FC_FN
  decltype(&::cuDeviceGetUuid) cuDeviceGetUuid_v1 = nullptr;
  decltype(&::cuGetProcAddress) cuGetProcAddress_v1 = nullptr;
  void (*fakecuda_reset)() = nullptr;

  void *sym(const char *name) const { return dlsym(lib, name); }

  static const Api &get()
  {
    static const Api api = load();
    return api;
  }

private:
  static Api load()
  {
    Api a;
    a.lib = dlopen(FAKECUDA_PATH, RTLD_NOW | RTLD_LOCAL);
    if (a.lib == nullptr) {
      std::fprintf(stderr, "dlopen %s: %s\n", FAKECUDA_PATH, dlerror());
      std::abort();
    }
    auto must = [&](const char *name) {
      void *p = a.sym(name);
      if (p == nullptr) {
        std::fprintf(stderr, "missing symbol %s\n", name);
        std::abort();
      }
      return p;
    };
#define FC_LOAD(member, name) a.member = reinterpret_cast<decltype(a.member)>(must(name))
    FC_LOAD(cuInit, "cuInit");
    FC_LOAD(cuDriverGetVersion, "cuDriverGetVersion");
    FC_LOAD(cuGetErrorName, "cuGetErrorName");
    FC_LOAD(cuGetErrorString, "cuGetErrorString");
    FC_LOAD(cuDeviceGetCount, "cuDeviceGetCount");
    FC_LOAD(cuDeviceGet, "cuDeviceGet");
    FC_LOAD(cuDeviceGetName, "cuDeviceGetName");
    FC_LOAD(cuDeviceGetUuid_v2, "cuDeviceGetUuid_v2");
    FC_LOAD(cuDeviceGetUuid_v1, "cuDeviceGetUuid");
    FC_LOAD(cuDeviceTotalMem_v2, "cuDeviceTotalMem_v2");
    FC_LOAD(cuDeviceGetAttribute, "cuDeviceGetAttribute");
    FC_LOAD(cuDeviceGetPCIBusId, "cuDeviceGetPCIBusId");
    FC_LOAD(cuDeviceGetByPCIBusId, "cuDeviceGetByPCIBusId");
    FC_LOAD(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    FC_LOAD(cuDevicePrimaryCtxRelease_v2, "cuDevicePrimaryCtxRelease_v2");
    FC_LOAD(cuDevicePrimaryCtxSetFlags_v2, "cuDevicePrimaryCtxSetFlags_v2");
    FC_LOAD(cuDevicePrimaryCtxGetState, "cuDevicePrimaryCtxGetState");
    FC_LOAD(cuCtxSetCurrent, "cuCtxSetCurrent");
    FC_LOAD(cuCtxGetCurrent, "cuCtxGetCurrent");
    FC_LOAD(cuCtxSynchronize, "cuCtxSynchronize");
    FC_LOAD(cuMemGetInfo_v2, "cuMemGetInfo_v2");
    FC_LOAD(cuMemAlloc_v2, "cuMemAlloc_v2");
    FC_LOAD(cuMemFree_v2, "cuMemFree_v2");
    FC_LOAD(cuMemHostAlloc, "cuMemHostAlloc");
    FC_LOAD(cuMemFreeHost, "cuMemFreeHost");
    FC_LOAD(cuMemHostRegister_v2, "cuMemHostRegister_v2");
    FC_LOAD(cuMemHostUnregister, "cuMemHostUnregister");
    FC_LOAD(cuStreamCreate, "cuStreamCreate");
    FC_LOAD(cuStreamDestroy_v2, "cuStreamDestroy_v2");
    FC_LOAD(cuStreamSynchronize, "cuStreamSynchronize");
    FC_LOAD(cuEventCreate, "cuEventCreate");
    FC_LOAD(cuEventDestroy_v2, "cuEventDestroy_v2");
    FC_LOAD(cuEventRecord, "cuEventRecord");
    FC_LOAD(cuEventSynchronize, "cuEventSynchronize");
    FC_LOAD(cuMemcpyHtoDAsync_v2, "cuMemcpyHtoDAsync_v2");
    FC_LOAD(cuMemcpyDtoHAsync_v2, "cuMemcpyDtoHAsync_v2");
    FC_LOAD(cuMemcpyHtoD_v2, "cuMemcpyHtoD_v2");
    FC_LOAD(cuMemcpyDtoH_v2, "cuMemcpyDtoH_v2");
    FC_LOAD(cuMemcpy2DAsync_v2, "cuMemcpy2DAsync_v2");
    FC_LOAD(cuMemsetD8Async, "cuMemsetD8Async");
    FC_LOAD(cuMemsetD8_v2, "cuMemsetD8_v2");
    FC_LOAD(cuGetProcAddress_v2, "cuGetProcAddress_v2");
    FC_LOAD(cuGetProcAddress_v1, "cuGetProcAddress");
    FC_LOAD(cuMemGetAllocationGranularity, "cuMemGetAllocationGranularity");
    FC_LOAD(cuMemCreate, "cuMemCreate");
    FC_LOAD(cuMemRelease, "cuMemRelease");
    FC_LOAD(cuMemAddressReserve, "cuMemAddressReserve");
    FC_LOAD(cuMemAddressFree, "cuMemAddressFree");
    FC_LOAD(cuMemMap, "cuMemMap");
    FC_LOAD(cuMemUnmap, "cuMemUnmap");
    FC_LOAD(cuMemSetAccess, "cuMemSetAccess");
    FC_LOAD(fakecuda_reset, "fakecuda_reset");
#undef FC_LOAD
    return a;
  }
};

const Api &cu() { return Api::get(); }

// The base names the plugin asks cuGetProcAddress for, and the exported
// symbol each must resolve to.
const std::vector<std::pair<const char *, const char *>> kProcTable = {
  {"cuInit", "cuInit"},
  {"cuDriverGetVersion", "cuDriverGetVersion"},
  {"cuGetErrorName", "cuGetErrorName"},
  {"cuGetErrorString", "cuGetErrorString"},
  {"cuGetProcAddress", "cuGetProcAddress_v2"},
  {"cuDeviceGetCount", "cuDeviceGetCount"},
  {"cuDeviceGet", "cuDeviceGet"},
  {"cuDeviceGetName", "cuDeviceGetName"},
  {"cuDeviceGetUuid", "cuDeviceGetUuid_v2"},
  {"cuDeviceTotalMem", "cuDeviceTotalMem_v2"},
  {"cuDeviceGetAttribute", "cuDeviceGetAttribute"},
  {"cuDeviceGetPCIBusId", "cuDeviceGetPCIBusId"},
  {"cuDeviceGetByPCIBusId", "cuDeviceGetByPCIBusId"},
  {"cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRetain"},
  {"cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxRelease_v2"},
  {"cuDevicePrimaryCtxSetFlags", "cuDevicePrimaryCtxSetFlags_v2"},
  {"cuDevicePrimaryCtxGetState", "cuDevicePrimaryCtxGetState"},
  {"cuCtxSetCurrent", "cuCtxSetCurrent"},
  {"cuCtxGetCurrent", "cuCtxGetCurrent"},
  {"cuCtxSynchronize", "cuCtxSynchronize"},
  {"cuMemGetInfo", "cuMemGetInfo_v2"},
  {"cuMemAlloc", "cuMemAlloc_v2"},
  {"cuMemFree", "cuMemFree_v2"},
  {"cuMemHostAlloc", "cuMemHostAlloc"},
  {"cuMemFreeHost", "cuMemFreeHost"},
  {"cuMemHostRegister", "cuMemHostRegister_v2"},
  {"cuMemHostUnregister", "cuMemHostUnregister"},
  {"cuStreamCreate", "cuStreamCreate"},
  {"cuStreamDestroy", "cuStreamDestroy_v2"},
  {"cuStreamSynchronize", "cuStreamSynchronize"},
  {"cuEventCreate", "cuEventCreate"},
  {"cuEventDestroy", "cuEventDestroy_v2"},
  {"cuEventRecord", "cuEventRecord"},
  {"cuEventSynchronize", "cuEventSynchronize"},
  {"cuMemcpyHtoD", "cuMemcpyHtoD_v2"},
  {"cuMemcpyDtoH", "cuMemcpyDtoH_v2"},
  {"cuMemcpyHtoDAsync", "cuMemcpyHtoDAsync_v2"},
  {"cuMemcpyDtoHAsync", "cuMemcpyDtoHAsync_v2"},
  {"cuMemcpy2DAsync", "cuMemcpy2DAsync_v2"},
  {"cuMemsetD8", "cuMemsetD8_v2"},
  {"cuMemsetD8Async", "cuMemsetD8Async"},
  {"cuMemGetAllocationGranularity", "cuMemGetAllocationGranularity"},
  {"cuMemCreate", "cuMemCreate"},
  {"cuMemRelease", "cuMemRelease"},
  {"cuMemAddressReserve", "cuMemAddressReserve"},
  {"cuMemAddressFree", "cuMemAddressFree"},
  {"cuMemMap", "cuMemMap"},
  {"cuMemUnmap", "cuMemUnmap"},
  {"cuMemSetAccess", "cuMemSetAccess"},
};

std::string read_file(const std::string &path)
{
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// n bytes of `file` from `offset` (short if the file is).
std::vector<unsigned char> read_at(const std::string &file, std::uint64_t offset, std::size_t n)
{
  std::vector<unsigned char> out(n);
  const int fd = open(file.c_str(), O_RDONLY);
  if (fd < 0) return {};
  const ssize_t got = pread(fd, out.data(), n, static_cast<off_t>(offset));
  close(fd);
  out.resize(got < 0 ? 0 : static_cast<std::size_t>(got));
  return out;
}

std::vector<unsigned char> pattern(std::size_t n, unsigned seed)
{
  std::vector<unsigned char> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<unsigned char>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
  return v;
}

class FakeCuda : public ::testing::Test {
protected:
  void SetUp() override
  {
    // Start from a clean slate whatever the environment ctest runs us in.
    std::vector<std::string> names;
    for (char **e = environ; *e != nullptr; ++e)
      if (std::strncmp(*e, "FAKECUDA_", 9) == 0) names.emplace_back(*e, std::strchr(*e, '=') - *e);
    for (const auto &n : names)
      unsetenv(n.c_str());
    char tmpl[] = "/tmp/fakecuda_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }

  void TearDown() override
  {
    cu().fakecuda_reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string path(const char *name) const { return dir_ + "/" + name; }

  static void set(const char *name, const std::string &value) { setenv(name, value.c_str(), 1); }

  // Sets the variables and initialises; a failure aborts the test.
  void init(std::initializer_list<std::pair<const char *, std::string>> env = {})
  {
    for (const auto &[k, v] : env)
      set(k, v);
    ASSERT_EQ(CUDA_SUCCESS, cu().cuInit(0));
  }

  // Retains device `dev`'s primary context and makes it current on this
  // thread.
  CUcontext use_device(CUdevice dev)
  {
    CUcontext ctx = nullptr;
    EXPECT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRetain(&ctx, dev));
    EXPECT_EQ(CUDA_SUCCESS, cu().cuCtxSetCurrent(ctx));
    return ctx;
  }

  CUdeviceptr alloc(std::size_t n)
  {
    CUdeviceptr p = 0;
    EXPECT_EQ(CUDA_SUCCESS, cu().cuMemAlloc_v2(&p, n));
    return p;
  }

  CUstream stream()
  {
    CUstream s = nullptr;
    EXPECT_EQ(CUDA_SUCCESS, cu().cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    return s;
  }

  std::size_t free_mem()
  {
    std::size_t free = 0, total = 0;
    EXPECT_EQ(CUDA_SUCCESS, cu().cuMemGetInfo_v2(&free, &total));
    return free;
  }

  // Virtual memory management helpers: what the plugin's lazy mode does.
  static CUmemAllocationProp pinned_on(int dev)
  {
    CUmemAllocationProp p{};
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = dev;
    return p;
  }

  static CUmemAccessDesc access_for(int dev,
                                    CUmemAccess_flags flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
  {
    CUmemAccessDesc d{};
    d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    d.location.id = dev;
    d.flags = flags;
    return d;
  }

  CUmemGenericAllocationHandle create(std::size_t n, int dev = 0)
  {
    const CUmemAllocationProp p = pinned_on(dev);
    CUmemGenericAllocationHandle h = 0;
    EXPECT_EQ(CUDA_SUCCESS, cu().cuMemCreate(&h, n, &p, 0));
    return h;
  }

  CUdeviceptr reserve(std::size_t n, std::size_t alignment = 0)
  {
    CUdeviceptr p = 0;
    EXPECT_EQ(CUDA_SUCCESS, cu().cuMemAddressReserve(&p, n, alignment, 0, 0));
    return p;
  }

  static CUresult set_access(CUdeviceptr va, std::size_t n, int dev = 0,
                             CUmemAccess_flags flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
  {
    const CUmemAccessDesc d = access_for(dev, flags);
    return cu().cuMemSetAccess(va, n, &d, 1);
  }

  // cuMemMap + cuMemSetAccess(read-write for `dev`).
  static void map_rw(CUdeviceptr va, std::size_t n, CUmemGenericAllocationHandle h,
                     std::size_t offset = 0, int dev = 0)
  {
    EXPECT_EQ(CUDA_SUCCESS, cu().cuMemMap(va, n, offset, h, 0));
    EXPECT_EQ(CUDA_SUCCESS, set_access(va, n, dev));
  }

  // Writes the trigger file the way a test should: complete content appears
  // at once (rename), so the fake never reads a half-written file.
  void write_trigger(const std::string &file, const std::string &content)
  {
    const std::string tmp = file + ".tmp";
    {
      std::ofstream out(tmp);
      out << content << "\n";
    }
    ASSERT_EQ(0, std::rename(tmp.c_str(), file.c_str()));
  }

  std::string dir_;
};

// ---- Loader entry points, errors, versions ------------------------------------

TEST_F(FakeCuda, GetProcAddressFindsEveryEntryPointBeforeInit)
{
  for (const auto &[base, exported] : kProcTable) {
    SCOPED_TRACE(base);
    void *fn = nullptr;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
    ASSERT_EQ(CUDA_SUCCESS,
              cu().cuGetProcAddress_v2(base, &fn, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &status));
    EXPECT_EQ(CU_GET_PROC_ADDRESS_SUCCESS, status);
    EXPECT_EQ(cu().sym(exported), fn);

    void *fn1 = nullptr;
    ASSERT_EQ(CUDA_SUCCESS, cu().cuGetProcAddress_v1(base, &fn1, 11000, 0));
    EXPECT_EQ(fn, fn1);
  }
}

TEST_F(FakeCuda, GetProcAddressUnknownName)
{
  // Versioned names are not lookup keys, just as with the real driver.
  for (const char *name : {"cuNoSuchFunction", "cuMemAlloc_v2", ""}) {
    SCOPED_TRACE(name);
    void *fn = reinterpret_cast<void *>(0x1);
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
    EXPECT_EQ(CUDA_ERROR_NOT_FOUND, cu().cuGetProcAddress_v2(name, &fn, 13000, 0, &status));
    EXPECT_EQ(nullptr, fn);
    EXPECT_EQ(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND, status);
    fn = reinterpret_cast<void *>(0x1);
    EXPECT_EQ(CUDA_ERROR_NOT_FOUND, cu().cuGetProcAddress_v1(name, &fn, 13000, 0));
    EXPECT_EQ(nullptr, fn);
  }
  void *fn = nullptr;
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuGetProcAddress_v2(nullptr, &fn, 13000, 0, nullptr));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuGetProcAddress_v2("cuInit", nullptr, 13000, 0, nullptr));
}

TEST_F(FakeCuda, ErrorNamesAndStrings)
{
  const char *s = nullptr;
  EXPECT_EQ(CUDA_SUCCESS, cu().cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &s));
  EXPECT_STREQ("CUDA_ERROR_OUT_OF_MEMORY", s);
  EXPECT_EQ(CUDA_SUCCESS, cu().cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
  EXPECT_STREQ("out of memory", s);
  for (CUresult code :
       {CUDA_SUCCESS, CUDA_ERROR_INVALID_VALUE, CUDA_ERROR_NOT_INITIALIZED, CUDA_ERROR_NO_DEVICE,
        CUDA_ERROR_INVALID_DEVICE, CUDA_ERROR_INVALID_CONTEXT, CUDA_ERROR_INVALID_HANDLE,
        CUDA_ERROR_NOT_FOUND, CUDA_ERROR_ECC_UNCORRECTABLE, CUDA_ERROR_ILLEGAL_ADDRESS,
        CUDA_ERROR_LAUNCH_FAILED, CUDA_ERROR_LAUNCH_TIMEOUT, CUDA_ERROR_UNKNOWN}) {
    SCOPED_TRACE(static_cast<int>(code));
    const char *name = nullptr;
    const char *text = nullptr;
    EXPECT_EQ(CUDA_SUCCESS, cu().cuGetErrorName(code, &name));
    EXPECT_EQ(CUDA_SUCCESS, cu().cuGetErrorString(code, &text));
    ASSERT_NE(nullptr, name);
    ASSERT_NE(nullptr, text);
    EXPECT_EQ(0, std::strncmp(name, "CUDA_", 5));
    EXPECT_GT(std::strlen(text), 3u);
  }
  cu().cuGetErrorName(CUDA_ERROR_NO_DEVICE, &s);
  EXPECT_STREQ("CUDA_ERROR_NO_DEVICE", s);
  cu().cuGetErrorName(CUDA_ERROR_UNKNOWN, &s);
  EXPECT_STREQ("CUDA_ERROR_UNKNOWN", s);

  // A value the enumeration can hold but that names no error.
  const auto unknown = static_cast<CUresult>(42);
  s = "x";
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuGetErrorName(unknown, &s));
  EXPECT_EQ(nullptr, s);
  s = "x";
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuGetErrorString(unknown, &s));
  EXPECT_EQ(nullptr, s);
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuGetErrorName(CUDA_SUCCESS, nullptr));
}

TEST_F(FakeCuda, CallsBeforeInitFail)
{
  int n = -1;
  EXPECT_EQ(CUDA_ERROR_NOT_INITIALIZED, cu().cuDeviceGetCount(&n));
  CUdeviceptr p = 0;
  EXPECT_EQ(CUDA_ERROR_NOT_INITIALIZED, cu().cuMemAlloc_v2(&p, 1));
  CUstream s = nullptr;
  EXPECT_EQ(CUDA_ERROR_NOT_INITIALIZED, cu().cuStreamCreate(&s, 0));
  EXPECT_EQ(CUDA_ERROR_NOT_INITIALIZED, cu().cuCtxSynchronize());
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuInit(1)); // flags must be 0
}

TEST_F(FakeCuda, DriverVersionWorksBeforeInitAndIsConfigurable)
{
  int v = 0;
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDriverGetVersion(&v));
  EXPECT_EQ(13000, v);
  set("FAKECUDA_DRIVER_VERSION", "12080");
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDriverGetVersion(&v));
  EXPECT_EQ(12080, v);
  init();
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDriverGetVersion(&v));
  EXPECT_EQ(12080, v);
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuDriverGetVersion(nullptr));
}

// ---- Configuration ---------------------------------------------------------------

TEST_F(FakeCuda, DefaultConfigurationIsOneGpu)
{
  init();
  EXPECT_EQ(CUDA_SUCCESS, cu().cuInit(0)); // again: no-op
  int n = 0;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGetCount(&n));
  EXPECT_EQ(1, n);
  CUdevice dev = -1;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGet(&dev, 0));
  EXPECT_EQ(0, dev);
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE, cu().cuDeviceGet(&dev, 1));
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE, cu().cuDeviceGet(&dev, -1));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuDeviceGet(nullptr, 0));

  char name[64];
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGetName(name, sizeof name, 0));
  EXPECT_STREQ("Fake GPU 0", name);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGetName(name, 5, 0)); // truncates
  EXPECT_STREQ("Fake", name);
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE, cu().cuDeviceGetName(name, sizeof name, 1));

  std::size_t total = 0;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceTotalMem_v2(&total, 0));
  EXPECT_EQ(GiB, total);

  CUuuid u2{}, u1{};
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGetUuid_v2(&u2, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGetUuid_v1(&u1, 0));
  const unsigned char expect[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(0, std::memcmp(expect, u2.bytes, 16));
  EXPECT_EQ(0, std::memcmp(expect, u1.bytes, 16));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuDeviceGetUuid_v2(nullptr, 0));

  char bus[32];
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGetPCIBusId(bus, sizeof bus, 0));
  EXPECT_STREQ("0000:01:00.0", bus);

  auto attr = [](CUdevice_attribute a) {
    int v = -1;
    EXPECT_EQ(CUDA_SUCCESS, cu().cuDeviceGetAttribute(&v, a, 0));
    return v;
  };
  EXPECT_EQ(9, attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR));
  EXPECT_EQ(0, attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR));
  EXPECT_GT(attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT), 0);
  EXPECT_EQ(1, attr(CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING));
  EXPECT_EQ(1, attr(CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY));
  EXPECT_EQ(1, attr(CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED));
  EXPECT_EQ(0, attr(CU_DEVICE_ATTRIBUTE_ECC_ENABLED));
  EXPECT_EQ(0, attr(CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT));
  EXPECT_EQ(1, attr(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID));
  EXPECT_EQ(0, attr(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID));
  EXPECT_EQ(0, attr(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID));
  EXPECT_EQ(0, attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK)); // not modelled
  int v = 0;
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuDeviceGetAttribute(nullptr, CU_DEVICE_ATTRIBUTE_ECC_ENABLED, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE,
            cu().cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_ECC_ENABLED, 3));
}

TEST_F(FakeCuda, SeveralGpusFromConfig)
{
  init({{"FAKECUDA_GPUS",
         "name=Alpha "
         "80GB,total=64M,uuid=GPU-01234567-89ab-cdef-0123-456789ABCDEF,pci=0000:41:00.0,display=1;"
         " name = Beta , total=2g, free=1G, uuid=fedcba98-7654-3210-fedc-ba9876543210, "
         "pci=0001:c1:1f.0;"
         ""}});
  int n = 0;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGetCount(&n));
  ASSERT_EQ(3, n); // the trailing empty entry is a GPU with defaults

  char name[64];
  cu().cuDeviceGetName(name, sizeof name, 0);
  EXPECT_STREQ("Alpha 80GB", name);
  cu().cuDeviceGetName(name, sizeof name, 1);
  EXPECT_STREQ("Beta", name);
  cu().cuDeviceGetName(name, sizeof name, 2);
  EXPECT_STREQ("Fake GPU 2", name);

  std::size_t total = 0;
  cu().cuDeviceTotalMem_v2(&total, 0);
  EXPECT_EQ(64 * MiB, total);
  cu().cuDeviceTotalMem_v2(&total, 1);
  EXPECT_EQ(2 * GiB, total);
  cu().cuDeviceTotalMem_v2(&total, 2);
  EXPECT_EQ(GiB, total);

  CUuuid u{};
  cu().cuDeviceGetUuid_v2(&u, 0);
  const unsigned char u0[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
  EXPECT_EQ(0, std::memcmp(u0, u.bytes, 16));
  cu().cuDeviceGetUuid_v2(&u, 1);
  EXPECT_EQ(0xfe, static_cast<unsigned char>(u.bytes[0]));
  EXPECT_EQ(0x10, static_cast<unsigned char>(u.bytes[7]));
  cu().cuDeviceGetUuid_v2(&u, 2);
  EXPECT_EQ(3, u.bytes[15]);

  char bus[32];
  cu().cuDeviceGetPCIBusId(bus, sizeof bus, 0);
  EXPECT_STREQ("0000:41:00.0", bus);
  cu().cuDeviceGetPCIBusId(bus, sizeof bus, 1);
  EXPECT_STREQ("0001:C1:1F.0", bus); // upper case, like the real driver
  cu().cuDeviceGetPCIBusId(bus, sizeof bus, 2);
  EXPECT_STREQ("0000:03:00.0", bus);

  int v = -1;
  cu().cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT, 0);
  EXPECT_EQ(1, v);
  cu().cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT, 1);
  EXPECT_EQ(0, v);
  cu().cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, 1);
  EXPECT_EQ(1, v);
  cu().cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 1);
  EXPECT_EQ(0xc1, v);
  cu().cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, 1);
  EXPECT_EQ(0x1f, v);

  CUdevice dev = -1;
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDeviceGetByPCIBusId(&dev, "0001:C1:1F.0"));
  EXPECT_EQ(1, dev);
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDeviceGetByPCIBusId(&dev, "0001:c1:1f.0"));
  EXPECT_EQ(1, dev);
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDeviceGetByPCIBusId(&dev, "00000000:41:00.0")); // nvidia-smi form
  EXPECT_EQ(0, dev);
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDeviceGetByPCIBusId(&dev, "41:00.0")); // no domain
  EXPECT_EQ(0, dev);
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDeviceGetByPCIBusId(&dev, "0000:03:00")); // no function
  EXPECT_EQ(2, dev);
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE, cu().cuDeviceGetByPCIBusId(&dev, "0000:99:00.0"));
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE, cu().cuDeviceGetByPCIBusId(&dev, "c1:1f.0")); // domain 0
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuDeviceGetByPCIBusId(&dev, "not-a-bus-id"));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuDeviceGetByPCIBusId(&dev, nullptr));
}

TEST_F(FakeCuda, ZeroGpusIsNoDevice)
{
  set("FAKECUDA_GPUS", "");
  EXPECT_EQ(CUDA_ERROR_NO_DEVICE, cu().cuInit(0));
  int n = 0;
  EXPECT_EQ(CUDA_ERROR_NOT_INITIALIZED, cu().cuDeviceGetCount(&n));
}

TEST_F(FakeCuda, InitErrorSimulatesBrokenDriver)
{
  set("FAKECUDA_INIT_ERROR", "999");
  EXPECT_EQ(CUDA_ERROR_UNKNOWN, cu().cuInit(0));
  set("FAKECUDA_INIT_ERROR", "CUDA_ERROR_NO_DEVICE");
  EXPECT_EQ(CUDA_ERROR_NO_DEVICE, cu().cuInit(0));
  int n = 0;
  EXPECT_EQ(CUDA_ERROR_NOT_INITIALIZED, cu().cuDeviceGetCount(&n));
  set("FAKECUDA_INIT_ERROR", "0"); // 0 = no error
  EXPECT_EQ(CUDA_SUCCESS, cu().cuInit(0));
}

struct BadSetting {
  const char *name; // test name suffix
  const char *var;
  const char *value;
  const char *mentions; // the message must name the culprit
};

void PrintTo(const BadSetting &b, std::ostream *os) { *os << b.var << "=" << b.value; }

class FakeCudaBadConfig : public FakeCuda, public ::testing::WithParamInterface<BadSetting> {};

TEST_P(FakeCudaBadConfig, InitFailsWithMessage)
{
  const BadSetting &p = GetParam();
  set(p.var, p.value);
  ::testing::internal::CaptureStderr();
  const CUresult r = cu().cuInit(0);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, r);
  EXPECT_NE(std::string::npos, err.find(p.mentions)) << err;
  EXPECT_NE(std::string::npos, err.find("fakecuda")) << err;
}

INSTANTIATE_TEST_SUITE_P(
  Settings, FakeCudaBadConfig,
  ::testing::Values(
    BadSetting{"TotalSuffix", "FAKECUDA_GPUS", "total=12X", "'total'"},
    BadSetting{"TotalZero", "FAKECUDA_GPUS", "total=0", "'total'"},
    BadSetting{"TotalTooLarge", "FAKECUDA_GPUS", "total=2T", "'total'"},
    BadSetting{"Pci", "FAKECUDA_GPUS", "name=A;pci=zz", "GPU 1: bad value for key 'pci'"},
    BadSetting{"Display", "FAKECUDA_GPUS", "display=2", "'display'"},
    BadSetting{"Uuid", "FAKECUDA_GPUS", "uuid=1234", "'uuid'"},
    BadSetting{"Free", "FAKECUDA_GPUS", "free=lots", "'free'"},
    BadSetting{"Vmm", "FAKECUDA_GPUS", "vmm=yes", "'vmm'"},
    BadSetting{"UnknownKey", "FAKECUDA_GPUS", "colour=red", "unknown key 'colour'"},
    BadSetting{"DuplicateKey", "FAKECUDA_GPUS", "total=1G,total=2G", "'total' given twice"},
    BadSetting{"NotKeyValue", "FAKECUDA_GPUS", "name", "not key=value"},
    BadSetting{"DuplicatePci", "FAKECUDA_GPUS", "pci=0000:01:00.0;pci=01:00.0", "same pci"},
    BadSetting{"Latency", "FAKECUDA_LATENCY_US", "soon", "FAKECUDA_LATENCY_US"},
    BadSetting{"Timeslice", "FAKECUDA_TIMESLICE_US", "2ms", "FAKECUDA_TIMESLICE_US"},
    BadSetting{"FailMode", "FAKECUDA_FAIL_MODE", "sometimes", "FAKECUDA_FAIL_MODE"},
    BadSetting{"FailCopy", "FAKECUDA_FAIL_COPY", "-1", "FAKECUDA_FAIL_COPY"},
    BadSetting{"FailCode", "FAKECUDA_FAIL_CODE", "CUDA_ERROR_BOGUS", "FAKECUDA_FAIL_CODE"},
    BadSetting{"FailCallName", "FAKECUDA_FAIL_CALL", "cuMemAlloc:1", "FAKECUDA_FAIL_CALL"},
    BadSetting{"FailCallCount", "FAKECUDA_FAIL_CALL", "cuMemMap:0", "FAKECUDA_FAIL_CALL"},
    BadSetting{"FailCallForm", "FAKECUDA_FAIL_CALL", "cuMemMap", "NAME:N"},
    BadSetting{"AllocFailAbove", "FAKECUDA_ALLOC_FAIL_ABOVE", "1Q", "FAKECUDA_ALLOC_FAIL_ABOVE"},
    BadSetting{"DriverVersion", "FAKECUDA_DRIVER_VERSION", "twelve", "FAKECUDA_DRIVER_VERSION"},
    BadSetting{"InitError", "FAKECUDA_INIT_ERROR", "1000", "FAKECUDA_INIT_ERROR"}),
  [](const ::testing::TestParamInfo<BadSetting> &info) { return std::string(info.param.name); });

// ---- Contexts ----------------------------------------------------------------------

TEST_F(FakeCuda, PrimaryContextLifecycle)
{
  init({{"FAKECUDA_GPUS", "total=64M;total=64M"}});
  CUdeviceptr p = 0;
  EXPECT_EQ(CUDA_ERROR_INVALID_CONTEXT, cu().cuMemAlloc_v2(&p, 1)); // none current

  unsigned flags = 99;
  int active = 99;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxGetState(1, &flags, &active));
  EXPECT_EQ(0, active);
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxSetFlags_v2(1, CU_CTX_SCHED_BLOCKING_SYNC));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuDevicePrimaryCtxSetFlags_v2(1, 0x10000));
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE, cu().cuDevicePrimaryCtxSetFlags_v2(2, 0));

  CUcontext ctx = use_device(1);
  ASSERT_NE(nullptr, ctx);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxGetState(1, &flags, &active));
  EXPECT_EQ(1, active);
  EXPECT_EQ(static_cast<unsigned>(CU_CTX_SCHED_BLOCKING_SYNC), flags);
  CUcontext again = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRetain(&again, 1));
  EXPECT_EQ(ctx, again); // one primary context per device
  CUcontext cur = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuCtxGetCurrent(&cur));
  EXPECT_EQ(ctx, cur);

  // Current contexts are per thread.
  std::thread([&] {
    CUcontext c = reinterpret_cast<CUcontext>(0x1);
    EXPECT_EQ(CUDA_SUCCESS, cu().cuCtxGetCurrent(&c));
    EXPECT_EQ(nullptr, c);
    CUdeviceptr q = 0;
    EXPECT_EQ(CUDA_ERROR_INVALID_CONTEXT, cu().cuMemAlloc_v2(&q, 1));
  }).join();

  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemAlloc_v2(&p, 1));
  EXPECT_EQ(kBase + kWindow, p); // GPU 1's window

  EXPECT_EQ(CUDA_ERROR_INVALID_CONTEXT, cu().cuCtxSetCurrent(reinterpret_cast<CUcontext>(&flags)));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRelease_v2(1));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRelease_v2(1)); // now inactive
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxGetState(1, &flags, &active));
  EXPECT_EQ(0, active);
  EXPECT_EQ(CUDA_ERROR_INVALID_CONTEXT, cu().cuMemAlloc_v2(&p, 1));
  EXPECT_EQ(CUDA_ERROR_INVALID_CONTEXT, cu().cuCtxSetCurrent(ctx));
  EXPECT_EQ(CUDA_ERROR_INVALID_CONTEXT, cu().cuDevicePrimaryCtxRelease_v2(1)); // unbalanced
  EXPECT_EQ(CUDA_SUCCESS, cu().cuCtxSetCurrent(nullptr));
}

TEST_F(FakeCuda, LastReleaseFreesWhatTheContextOwned)
{
  const std::string map = path("map");
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_MAP_FILE", map}});
  use_device(0);
  const CUdeviceptr p = alloc(MiB);
  CUstream s = stream();
  CUevent ev = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING));
  void *host = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostAlloc(&host, 4096, 0));

  ::testing::internal::CaptureStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRelease_v2(0));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos,
            err.find("1 allocation(s), 1 stream(s), 1 event(s), 1 pinned buffer(s)"))
    << err;
  EXPECT_NE(std::string::npos, read_file(map).find("free gpu=0 dptr=0x100000000000\n"));

  use_device(0);
  std::size_t free = 0, total = 0;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemGetInfo_v2(&free, &total));
  EXPECT_EQ(total, free);
  // The old handles are dead, and the fake says so instead of crashing.
  EXPECT_EQ(CUDA_ERROR_INVALID_HANDLE, cu().cuStreamDestroy_v2(s));
  EXPECT_EQ(CUDA_ERROR_INVALID_HANDLE, cu().cuEventDestroy_v2(ev));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemFree_v2(p));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemFreeHost(host));
  ::testing::internal::GetCapturedStderr();
}

// ---- Allocation -------------------------------------------------------------------------

TEST_F(FakeCuda, AllocationIsFirstFitAndLoggedToMapFile)
{
  const std::string map = path("map");
  init({{"FAKECUDA_GPUS", "total=64M;total=64M"}, {"FAKECUDA_MAP_FILE", map}});
  use_device(1);
  const CUdeviceptr a = alloc(1);
  const CUdeviceptr b = alloc(3 * MiB);
  EXPECT_EQ(kBase + kWindow, a);           // GPU 1, region offset 0
  EXPECT_EQ(kBase + kWindow + 2 * MiB, b); // 1 byte reserved 2 MiB
  use_device(0);
  const CUdeviceptr c = alloc(5000);
  EXPECT_EQ(kBase, c);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemFree_v2(b));

  EXPECT_EQ("alloc gpu=1 dptr=0x110000000000 file_offset=67108864 size=1\n"
            "alloc gpu=1 dptr=0x110000200000 file_offset=69206016 size=3145728\n"
            "alloc gpu=0 dptr=0x100000000000 file_offset=0 size=5000\n"
            "free gpu=1 dptr=0x110000200000\n",
            read_file(map));
}

TEST_F(FakeCuda, FreeCoalescesAndReallocReusesLowestRange)
{
  init({{"FAKECUDA_GPUS", "total=64M"}});
  use_device(0);
  const CUdeviceptr a = alloc(2 * MiB), b = alloc(2 * MiB), c = alloc(2 * MiB);
  EXPECT_EQ(kBase + 4 * MiB, c);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemFree_v2(b));
  EXPECT_EQ(b, alloc(MiB)); // the hole is reused
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemFree_v2(a));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemFree_v2(b));
  EXPECT_EQ(a, alloc(4 * MiB));                   // a and b's ranges were merged
  EXPECT_EQ(kBase + 6 * MiB, alloc(4 * MiB + 1)); // does not fit before c

  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuMemFree_v2(b)); // already freed (a's block now starts at a)
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemFree_v2(c + 16)); // not the start
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemFree_v2(0x1234)); // not a device pointer
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("not the start of a live allocation")) << err;
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemFree_v2(0));

  CUdeviceptr p = 0;
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAlloc_v2(&p, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAlloc_v2(nullptr, 1));
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemAlloc_v2(&p, 65 * MiB));
}

TEST_F(FakeCuda, FreeMemoryAccounting)
{
  init({{"FAKECUDA_GPUS", "total=1G,free=512M;total=64M,free=1T"}});
  use_device(0);
  std::size_t free = 0, total = 0;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemGetInfo_v2(&free, &total));
  EXPECT_EQ(GiB, total);
  EXPECT_EQ(512 * MiB, free);

  const CUdeviceptr a = alloc(100 * MiB);
  alloc(3 * MiB); // counts as 4 MiB
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemGetInfo_v2(&free, &total));
  EXPECT_EQ(408 * MiB, free);
  CUdeviceptr p = 0;
  // The region has room, but "other processes" hold the rest.
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemAlloc_v2(&p, 409 * MiB));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemAlloc_v2(&p, 408 * MiB));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemGetInfo_v2(&free, &total));
  EXPECT_EQ(0u, free);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemFree_v2(a));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemGetInfo_v2(&free, &total));
  EXPECT_EQ(100 * MiB, free);

  use_device(1); // free is capped at total
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemGetInfo_v2(&free, &total));
  EXPECT_EQ(64 * MiB, free);
  EXPECT_EQ(64 * MiB, total);
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemGetInfo_v2(nullptr, &total));
}

TEST_F(FakeCuda, AllocFailAbove)
{
  init({{"FAKECUDA_GPUS", "total=1G"}, {"FAKECUDA_ALLOC_FAIL_ABOVE", "8M"}});
  use_device(0);
  CUdeviceptr p = 0;
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemAlloc_v2(&p, 8 * MiB + 1));
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemAlloc_v2(&p, 512 * MiB));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemAlloc_v2(&p, 8 * MiB));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemAlloc_v2(&p, 8 * MiB));
  std::size_t free = 0, total = 0;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemGetInfo_v2(&free, &total));
  EXPECT_EQ(GiB - 16 * MiB, free); // still reports plenty
}

TEST_F(FakeCuda, PinnedHostMemory)
{
  init();
  void *p = nullptr;
  EXPECT_EQ(CUDA_ERROR_INVALID_CONTEXT, cu().cuMemHostAlloc(&p, 100, 0));
  use_device(0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostAlloc(&p, 100, CU_MEMHOSTALLOC_PORTABLE));
  ASSERT_NE(nullptr, p);
  EXPECT_EQ(0u, reinterpret_cast<std::uintptr_t>(p) %
                  static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE)));
  std::memset(p, 0x5a, 100);
  // Resident from the start, like real pinned memory: code under test never
  // takes a page fault on a staging buffer.
  void *big = nullptr;
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostAlloc(&big, 2 * MiB + 100, 0));
  std::vector<unsigned char> resident((2 * MiB + 100 + page - 1) / page);
  ASSERT_EQ(0, ::mincore(big, resident.size() * page, resident.data()));
  for (std::size_t i = 0; i < resident.size(); ++i)
    EXPECT_TRUE(resident[i] & 1) << "page " << i << " of a pinned buffer is not resident";
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemFreeHost(big));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemHostAlloc(&p, 0, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemHostAlloc(&p, 100, 0x100));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemHostAlloc(nullptr, 100, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemFreeHost(p));
  int local = 0;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemFreeHost(p)); // double free
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemFreeHost(&local));
  ::testing::internal::GetCapturedStderr();
}

TEST_F(FakeCuda, HostRegistration)
{
  init();
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void *mem = ::mmap(nullptr, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(MAP_FAILED, mem);
  auto *bytes = static_cast<std::byte *>(mem);
  EXPECT_EQ(CUDA_ERROR_INVALID_CONTEXT, cu().cuMemHostRegister_v2(mem, 4 * page, 0));
  use_device(0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostRegister_v2(mem, 4 * page, 0));
  // Registering pins: every page is resident.
  std::vector<unsigned char> resident(4);
  ASSERT_EQ(0, ::mincore(mem, 4 * page, resident.data()));
  for (std::size_t i = 0; i < resident.size(); ++i)
    EXPECT_TRUE(resident[i] & 1) << "page " << i << " of a registration is not resident";
  EXPECT_EQ(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
            cu().cuMemHostRegister_v2(bytes + 3 * page, 2 * page, 0));
  EXPECT_EQ(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
            cu().cuMemHostRegister_v2(bytes + page, page, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostRegister_v2(bytes + 4 * page, 4 * page, 0)); // adjacent
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemHostRegister_v2(mem, 0, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemHostRegister_v2(mem, page, 0x100));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, cu().cuMemHostUnregister(bytes + page));
  ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostUnregister(mem));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostRegister_v2(mem, page, 0)); // again, after unregistering
  // A registration is a context object: gone with the context, which says so.
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRelease_v2(0));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("2 host registration(s)")) << err;
  use_device(0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostRegister_v2(mem, 8 * page, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostUnregister(mem));
  ::munmap(mem, 8 * page);
}

namespace {
uint64_t rss_kb()
{
  const std::string status = read_file("/proc/self/status");
  const auto at = status.find("VmRSS:");
  return at == std::string::npos ? 0 : std::stoull(status.substr(at + 6));
}
} // namespace

TEST_F(FakeCuda, CreatingAContextTakesTimeAndHostMemory)
{
  init({{"FAKECUDA_CTX_CREATE_US", "30000"}, {"FAKECUDA_CTX_HOST_BYTES", "64M"}});
  const uint64_t before = rss_kb();
  const auto t0 = std::chrono::steady_clock::now();
  use_device(0);
  const auto created = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(created, std::chrono::milliseconds(30));
  EXPECT_GE(rss_kb(), before + 60 * 1024); // the context's host memory, resident
  // A second retain finds it alive: no creation, no more memory.
  CUcontext again = nullptr;
  const uint64_t with_one = rss_kb();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRetain(&again, 0));
  EXPECT_LT(rss_kb(), with_one + 1024);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRelease_v2(0));
  unsigned flags = 0;
  int active = 0;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxGetState(0, &flags, &active));
  EXPECT_EQ(1, active);
  // The last release destroys it and gives its memory back.
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRelease_v2(0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxGetState(0, &flags, &active));
  EXPECT_EQ(0, active);
  EXPECT_LT(rss_kb(), with_one - 60 * 1024);
}

// ---- Copies and the backing file ------------------------------------------------------

TEST_F(FakeCuda, RoundTripLandsInMemoryFileAtRegionOffset)
{
  const std::string file = path("vram");
  init({{"FAKECUDA_GPUS", "total=64M;total=64M"}, {"FAKECUDA_MEMORY_FILE", file}});
  struct stat st {};
  ASSERT_EQ(0, stat(file.c_str(), &st));
  EXPECT_EQ(static_cast<off_t>(128 * MiB), st.st_size); // created and sized

  use_device(1);
  const CUdeviceptr d = alloc(4 * MiB);
  const auto data = pattern(10000, 1);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(d + 1000, data.data(), data.size()));
  std::vector<unsigned char> back(data.size());
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(back.data(), d + 1000, back.size()));
  EXPECT_EQ(data, back);

  // Byte X of the allocation is at file offset region_start + X.
  const int fd = open(file.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<unsigned char> in_file(data.size());
  ASSERT_EQ(static_cast<ssize_t>(in_file.size()),
            pread(fd, in_file.data(), in_file.size(), 64 * MiB + 1000));
  close(fd);
  EXPECT_EQ(data, in_file);
}

TEST_F(FakeCuda, PokingTheFileIsVisibleToTheDevice)
{
  const std::string file = path("vram");
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_MEMORY_FILE", file}});
  use_device(0);
  const CUdeviceptr d = alloc(2 * MiB);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8_v2(d, 0, 2 * MiB));

  const auto poke = pattern(512, 9);
  const int fd = open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(512, pwrite(fd, poke.data(), poke.size(), 4096));
  close(fd);

  std::vector<unsigned char> got(512);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(got.data(), d + 4096, got.size()));
  EXPECT_EQ(poke, got);
  CUstream s = stream();
  std::vector<unsigned char> got2(512);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(got2.data(), d + 4096, got2.size(), s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ(poke, got2);
  cu().cuMemcpyDtoH_v2(got.data(), d + 4096 - 512, 512);
  EXPECT_EQ(std::vector<unsigned char>(512, 0), got);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
}

TEST_F(FakeCuda, ExistingLargerFileIsUsedAsIs)
{
  const std::string file = path("vram");
  {
    std::ofstream out(file);
  }
  ASSERT_EQ(0, truncate(file.c_str(), 256 * MiB));
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_MEMORY_FILE", file}});
  struct stat st {};
  ASSERT_EQ(0, stat(file.c_str(), &st));
  EXPECT_EQ(static_cast<off_t>(256 * MiB), st.st_size);
}

TEST_F(FakeCuda, MemoryFileThatCannotGrowIsRejected)
{
  // A FIFO stands in for a file with a fixed size (a sysfs BAR, a device):
  // too small, not resizable.
  const std::string fifo = path("fifo");
  ASSERT_EQ(0, mkfifo(fifo.c_str(), 0600));
  set("FAKECUDA_MEMORY_FILE", fifo);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuInit(0));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("cannot be resized")) << err;
  EXPECT_NE(std::string::npos, err.find(fifo)) << err;
}

TEST_F(FakeCuda, LargeSparseDevice)
{
  const std::string file = path("vram");
  init({{"FAKECUDA_GPUS", "total=64G"}, {"FAKECUDA_MEMORY_FILE", file}});
  use_device(0);
  alloc(60 * GiB);
  const CUdeviceptr d = alloc(2 * MiB);
  EXPECT_EQ(kBase + 60 * GiB, d);
  const auto data = pattern(4096, 3);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(d, data.data(), data.size()));
  std::vector<unsigned char> back(data.size());
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(back.data(), d, back.size()));
  EXPECT_EQ(data, back);
  struct stat st {};
  ASSERT_EQ(0, stat(file.c_str(), &st));
  EXPECT_EQ(static_cast<off_t>(64 * GiB), st.st_size);
  EXPECT_LT(st.st_blocks * 512, static_cast<blkcnt_t>(64 * MiB)); // sparse
}

TEST_F(FakeCuda, OutOfBoundsTransfersAreRejected)
{
  init({{"FAKECUDA_GPUS", "total=64M"}});
  use_device(0);
  const CUdeviceptr a = alloc(MiB);     // reserves 2 MiB
  const CUdeviceptr b = alloc(2 * MiB); // right after a's reservation
  CUstream s = stream();
  std::vector<unsigned char> buf(4 * MiB);

  ::testing::internal::CaptureStderr();
  // Past the requested size (into the rounding padding).
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(a, buf.data(), MiB + 1));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyDtoH_v2(buf.data(), a + MiB - 1, 2));
  // Straddling two allocations.
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(b - 4, buf.data(), 8));
  // Async ones are refused when issued, not at the sync.
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoDAsync_v2(b + MiB, buf.data(), 2 * MiB, s));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyDtoHAsync_v2(buf.data(), b - 1, 1, s));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemsetD8Async(a, 0, 2 * MiB, s));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemsetD8_v2(kBase + 32 * MiB, 0, 1)); // unallocated
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuMemcpyHtoD_v2(0x1000, buf.data(), 1)); // not device memory
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(kBase - 1, buf.data(), 2));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemFree_v2(b));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(b, buf.data(), 1)); // freed
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("fakecuda: out-of-bounds cuMemcpyHtoD_v2")) << err;
  EXPECT_NE(std::string::npos, err.find("fakecuda: out-of-bounds cuMemsetD8Async")) << err;

  // In bounds, right up to the last byte; and nothing failed on the stream.
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(a, buf.data(), MiB));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(buf.data(), a + MiB - 1, 1, s));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(a, nullptr, 1));
  EXPECT_EQ(CUDA_ERROR_INVALID_HANDLE,
            cu().cuMemcpyHtoDAsync_v2(a, buf.data(), 1, reinterpret_cast<CUstream>(buf.data())));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
  EXPECT_EQ(CUDA_ERROR_INVALID_HANDLE, cu().cuStreamDestroy_v2(s));
}

// ---- Streams and events ---------------------------------------------------------------------

TEST_F(FakeCuda, AsyncCopiesReallyRunLater)
{
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "reuses a copy's source before the copy runs, a data race on purpose";
#endif
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_LATENCY_US", "200000"}});
  use_device(0);
  const CUdeviceptr d = alloc(MiB);
  CUstream s = stream();
  CUevent ev = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING));

  // The source buffer is read when the copy runs, not when it is issued:
  // reusing it before synchronising corrupts the data, as on a real GPU.
  std::vector<unsigned char> src(4096, 'X');
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d, src.data(), src.size(), s));
  std::vector<unsigned char> dst(4096, 0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(dst.data(), d, dst.size(), s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventRecord(ev, s));
  const auto issued = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(issued, std::chrono::milliseconds(150));
  std::fill(src.begin(), src.end(), 'Y');
  EXPECT_EQ(std::vector<unsigned char>(4096, 0), dst); // not yet

  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventSynchronize(ev));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(400));
  EXPECT_EQ(std::vector<unsigned char>(4096, 'Y'), dst);

  // The default stream runs inline: done when the call returns.
  std::vector<unsigned char> now(16, 0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(now.data(), d, now.size(), nullptr));
  EXPECT_EQ(std::vector<unsigned char>(16, 'Y'), now);

  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventDestroy_v2(ev));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
}

TEST_F(FakeCuda, StreamRunsInOrderAndDestroyDrains)
{
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_LATENCY_US", "2000"}});
  use_device(0);
  const CUdeviceptr d = alloc(4 * MiB);
  CUstream s = stream();
  const auto mid = pattern(1000, 5);
  std::vector<unsigned char> out(4 * MiB);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8Async(d, 0xaa, 4 * MiB, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d + 3000, mid.data(), mid.size(), s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(out.data(), d, out.size(), s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s)); // completes the queue first
  EXPECT_EQ(0xaa, out[0]);
  EXPECT_EQ(0xaa, out[2999]);
  EXPECT_EQ(0, std::memcmp(mid.data(), out.data() + 3000, mid.size()));
  EXPECT_EQ(0xaa, out[4000]);
  EXPECT_EQ(0xaa, out[4 * MiB - 1]);
}

// Two rows of `width` bytes, back to back on both sides (the plugin's
// small-write shape), or with other pitches.
CUDA_MEMCPY2D htod_2d(CUdeviceptr dst, std::size_t dst_pitch, const void *src,
                      std::size_t src_pitch, std::size_t width, std::size_t rows)
{
  CUDA_MEMCPY2D c{};
  c.srcMemoryType = CU_MEMORYTYPE_HOST;
  c.srcHost = src;
  c.srcPitch = src_pitch;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = dst;
  c.dstPitch = dst_pitch;
  c.WidthInBytes = width;
  c.Height = rows;
  return c;
}

TEST_F(FakeCuda, Memcpy2DCopiesRowsWithTheirPitches)
{
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_LATENCY_US", "2000"}});
  use_device(0);
  const CUdeviceptr d = alloc(1 * MiB);
  CUstream s = stream();
  const auto src = pattern(4096, 9);
  std::vector<unsigned char> out(8192);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8Async(d, 0xee, 8192, s));
  // Contiguous: 2 rows of 2048 bytes are the page as it is.
  const CUDA_MEMCPY2D whole = htod_2d(d, 2048, src.data(), 2048, 2048, 2);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpy2DAsync_v2(&whole, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(out.data(), d, out.size(), s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ(0, std::memcmp(out.data(), src.data(), 4096));
  EXPECT_EQ(0xee, out[4096]);
  // Pitched: 4 rows of 100 bytes, 1000 apart on the device, 100 apart on
  // the host; the gaps keep what they held; and back again, device to host.
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8Async(d, 0xee, 8192, s));
  const CUDA_MEMCPY2D pitched = htod_2d(d + 7, 1000, src.data(), 100, 100, 4);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpy2DAsync_v2(&pitched, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(out.data(), d, out.size(), s));
  std::vector<unsigned char> back(400);
  CUDA_MEMCPY2D down{};
  down.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  down.srcDevice = d + 7;
  down.srcPitch = 1000;
  down.dstMemoryType = CU_MEMORYTYPE_HOST;
  down.dstHost = back.data();
  down.dstPitch = 100;
  down.WidthInBytes = 100;
  down.Height = 4;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpy2DAsync_v2(&down, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  for (std::size_t row = 0; row < 4; ++row) {
    EXPECT_EQ(0, std::memcmp(out.data() + 7 + row * 1000, src.data() + row * 100, 100)) << row;
    EXPECT_EQ(0xee, out[7 + row * 1000 + 100]) << row;
  }
  EXPECT_EQ(0xee, out[6]);
  EXPECT_EQ(0, std::memcmp(back.data(), src.data(), 400));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
}

TEST_F(FakeCuda, Memcpy2DChecksItsArguments)
{
  init({{"FAKECUDA_GPUS", "total=64M"}});
  use_device(0);
  const CUdeviceptr d = alloc(1 * MiB);
  CUstream s = stream();
  const auto src = pattern(4096, 3);
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpy2DAsync_v2(nullptr, s));
  const CUDA_MEMCPY2D narrow = htod_2d(d, 1000, src.data(), 10, 100, 2);
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpy2DAsync_v2(&narrow, s));
  // The last row past the end of the allocation.
  const CUDA_MEMCPY2D past = htod_2d(d + 1 * MiB - 2048, 2048, src.data(), 2048, 2048, 2);
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpy2DAsync_v2(&past, s));
  CUDA_MEMCPY2D dtod = htod_2d(d, 2048, src.data(), 2048, 2048, 2);
  dtod.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  dtod.srcDevice = d + 8192;
  EXPECT_EQ(CUDA_ERROR_NOT_SUPPORTED, cu().cuMemcpy2DAsync_v2(&dtod, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
}

TEST_F(FakeCuda, Memcpy2DIsOneCopyForFaultInjection)
{
  // The second copy fails: a 2D copy of 64 rows counts as one.
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_FAIL_COPY", "2"}});
  use_device(0);
  const CUdeviceptr d = alloc(1 * MiB);
  CUstream s = stream();
  const auto src = pattern(4096, 4);
  const CUDA_MEMCPY2D rows = htod_2d(d, 64, src.data(), 64, 64, 64);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpy2DAsync_v2(&rows, s));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpy2DAsync_v2(&rows, s));
  EXPECT_NE(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
}

TEST_F(FakeCuda, Memcpy2DIntoVmmMappings)
{
  init({{"FAKECUDA_GPUS", "total=64M"}});
  use_device(0);
  const std::size_t chunk = 2 * MiB;
  const CUdeviceptr va = reserve(2 * chunk);
  // Two chunks; the copy's rows straddle their boundary.
  map_rw(va, chunk, create(chunk));
  map_rw(va + chunk, chunk, create(chunk));
  CUstream s = stream();
  const auto src = pattern(4096, 5);
  const CUDA_MEMCPY2D rows = htod_2d(va + chunk - 2048 - 16, 2048, src.data(), 2048, 2048, 2);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpy2DAsync_v2(&rows, s));
  std::vector<unsigned char> out(4096);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(out.data(), va + chunk - 2048 - 16, 4096, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ(0, std::memcmp(out.data(), src.data(), 4096));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
}

// FAKECUDA_TIMESLICE_FILE: what the real driver would queue behind another
// context's kernels (timeslice.hpp), one line each; nothing else.
TEST_F(FakeCuda, TimesliceFileNamesTheOperationsThatWouldWait)
{
  const std::string file = path("timeslice");
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_TIMESLICE_FILE", file}});
  use_device(0);
  const CUdeviceptr d = alloc(1 * MiB);
  CUstream s = stream();
  const auto src = pattern(64 * 1024, 6);
  std::vector<unsigned char> out(64 * 1024);
  // Would not wait: 32 KiB and more in one row, two rows of any size,
  // device to host.
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d, src.data(), 32 * 1024, s));
  const CUDA_MEMCPY2D two_rows = htod_2d(d, 2048, src.data(), 2048, 2048, 2);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpy2DAsync_v2(&two_rows, s));
  const CUDA_MEMCPY2D two_bytes = htod_2d(d, 1, src.data(), 1, 1, 2);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpy2DAsync_v2(&two_bytes, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(out.data(), d, 4096, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ("", read_file(file));
  // Would wait: a small one-row copy (1D or 2D), any memset.
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d, src.data(), 4096, s));
  const CUDA_MEMCPY2D one_row = htod_2d(d, 4096, src.data(), 4096, 4096, 1);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpy2DAsync_v2(&one_row, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8Async(d, 0, 1 * MiB, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ("cuMemcpyHtoDAsync_v2 bytes=4096\ncuMemcpy2DAsync_v2 bytes=4096\ncuMemsetD8Async "
            "bytes=1048576\n",
            read_file(file));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
}

TEST_F(FakeCuda, EventsAndContextSynchronize)
{
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_LATENCY_US", "50000"}});
  use_device(0);
  CUevent ev = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventCreate(&ev, 0));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuEventSynchronize(ev)); // never recorded
  EXPECT_EQ(CUDA_SUCCESS, cu().cuEventRecord(ev, nullptr));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuEventSynchronize(ev));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuEventCreate(&ev, 0x80));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuStreamCreate(nullptr, 0));
  CUstream bad = nullptr;
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuStreamCreate(&bad, 7));

  const CUdeviceptr d = alloc(MiB);
  CUstream s1 = stream(), s2 = stream();
  std::vector<unsigned char> a(64, 0), b(64, 0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8_v2(d, 7, MiB));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(a.data(), d, a.size(), s1));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(b.data(), d, b.size(), s2));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuCtxSynchronize()); // waits for both streams
  EXPECT_EQ(std::vector<unsigned char>(64, 7), a);
  EXPECT_EQ(std::vector<unsigned char>(64, 7), b);
  EXPECT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(nullptr));

  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventDestroy_v2(ev));
  EXPECT_EQ(CUDA_ERROR_INVALID_HANDLE, cu().cuEventDestroy_v2(ev));
  EXPECT_EQ(CUDA_ERROR_INVALID_HANDLE, cu().cuEventRecord(ev, s1));
  EXPECT_EQ(CUDA_ERROR_INVALID_HANDLE, cu().cuEventSynchronize(ev));
  cu().cuStreamDestroy_v2(s1);
  cu().cuStreamDestroy_v2(s2);
}

TEST_F(FakeCuda, ManyThreadsEachWithItsOwnStream)
{
  init({{"FAKECUDA_GPUS", "total=256M"}, {"FAKECUDA_LATENCY_US", "100"}});
  CUcontext ctx = use_device(0);
  constexpr int kThreads = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      if (cu().cuCtxSetCurrent(ctx) != CUDA_SUCCESS) return void(++failures);
      CUdeviceptr d = 0;
      CUstream s = nullptr;
      void *pinned = nullptr;
      if (cu().cuMemAlloc_v2(&d, 3 * MiB) != CUDA_SUCCESS ||
          cu().cuStreamCreate(&s, 0) != CUDA_SUCCESS ||
          cu().cuMemHostAlloc(&pinned, 64 * 1024, 0) != CUDA_SUCCESS)
        return void(++failures);
      std::vector<unsigned char> back(64 * 1024);
      for (unsigned i = 0; i < 40; ++i) {
        const auto data = pattern(back.size(), static_cast<unsigned>(t) * 1000 + i);
        std::memcpy(pinned, data.data(), data.size());
        const CUdeviceptr at = d + (i % 3) * MiB;
        if (cu().cuMemcpyHtoDAsync_v2(at, pinned, data.size(), s) != CUDA_SUCCESS ||
            cu().cuMemcpyDtoHAsync_v2(back.data(), at, back.size(), s) != CUDA_SUCCESS ||
            cu().cuStreamSynchronize(s) != CUDA_SUCCESS || back != data)
          ++failures;
      }
      if (cu().cuStreamDestroy_v2(s) != CUDA_SUCCESS || cu().cuMemFree_v2(d) != CUDA_SUCCESS ||
          cu().cuMemFreeHost(pinned) != CUDA_SUCCESS)
        ++failures;
    });
  }
  for (auto &th : threads)
    th.join();
  EXPECT_EQ(0, failures.load());
  std::size_t free = 0, total = 0;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemGetInfo_v2(&free, &total));
  EXPECT_EQ(total, free);
}

// A stream's queue is a fixed ring (no allocation per copy): more copies
// than it holds, queued without a synchronisation, wait for room and all
// run, in order.
TEST_F(FakeCuda, MoreCopiesThanTheQueueHoldsAllRunInOrder)
{
  // 20 us a copy: the caller queues faster than they run, so the ring fills.
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_LATENCY_US", "20"}});
  use_device(0);
  CUdeviceptr d = 0;
  CUstream s = nullptr;
  void *pinned = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAlloc_v2(&d, 1 * MiB));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamCreate(&s, 0));
  constexpr std::size_t kCopies = 3000;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostAlloc(&pinned, kCopies, 0));
  auto *bytes = static_cast<unsigned char *>(pinned);
  for (std::size_t i = 0; i < kCopies; ++i)
    bytes[i] = static_cast<unsigned char>(i * 7 + 1);
  // Each copy writes one byte; every 100th then overwrites the byte before
  // it, so the order they run in shows.
  for (std::size_t i = 0; i < kCopies; ++i) {
    ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d + i, bytes + i, 1, s));
    if (i % 100 == 99) {
      ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d + i - 1, bytes + i, 1, s));
    }
  }
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  std::vector<unsigned char> back(kCopies);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(back.data(), d, kCopies));
  for (std::size_t i = 0; i < kCopies; ++i) {
    const std::size_t from = i % 100 == 98 ? i + 1 : i;
    ASSERT_EQ(static_cast<unsigned char>(from * 7 + 1), back[i]) << "byte " << i;
  }
  EXPECT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemFreeHost(pinned));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemFree_v2(d));
}

// ---- Fault injection
// -----------------------------------------------------------------------------

TEST_F(FakeCuda, TransientFaultOnNthCopySurfacesAtSync)
{
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_FAIL_COPY", "3"}});
  use_device(0);
  const CUdeviceptr d = alloc(MiB);
  CUstream s = stream();
  const auto data = pattern(4096, 2);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(d, data.data(), data.size()));         // copy 1
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8_v2(d + 8192, 1, 16));                       // not counted
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8Async(d + 8192, 1, 16, s));                  // not counted
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d, data.data(), data.size(), s)); // copy 2
  std::vector<unsigned char> back(4096, 0xee);
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(CUDA_SUCCESS,
            cu().cuMemcpyDtoHAsync_v2(back.data(), d, back.size(), s)); // copy 3: queued fine
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuStreamSynchronize(s));     // ...fails here
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("copy #3")) << err;
  EXPECT_EQ(std::vector<unsigned char>(4096, 0xee), back); // nothing was transferred
  EXPECT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));    // reported once

  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(back.data(), d, back.size(), s)); // copy 4
  EXPECT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ(data, back);
  CUdeviceptr p = 0;
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemAlloc_v2(&p, 1)); // the context is fine
  cu().cuStreamDestroy_v2(s);
}

TEST_F(FakeCuda, TransientFaultOnSyncCopyWithChosenCode)
{
  init({{"FAKECUDA_GPUS", "total=64M"},
        {"FAKECUDA_FAIL_COPY", "1"},
        {"FAKECUDA_FAIL_CODE", "CUDA_ERROR_ECC_UNCORRECTABLE"}});
  use_device(0);
  const CUdeviceptr d = alloc(MiB);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8_v2(d, 0, MiB));
  std::vector<unsigned char> data(100, 9);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_ECC_UNCORRECTABLE, cu().cuMemcpyHtoD_v2(d, data.data(), data.size()));
  ::testing::internal::GetCapturedStderr();
  std::vector<unsigned char> back(100, 1);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(back.data(), d, back.size()));
  EXPECT_EQ(std::vector<unsigned char>(100, 0), back); // the failed copy did not write
}

TEST_F(FakeCuda, EventSyncReportsErrorsBeforeItsMarkerOnly)
{
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_FAIL_COPY", "2"}});
  use_device(0);
  const CUdeviceptr d = alloc(MiB);
  CUstream s = stream();
  CUevent before = nullptr, after = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventCreate(&before, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventCreate(&after, 0));
  std::vector<unsigned char> buf(64);
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d, buf.data(), buf.size(), s)); // 1
  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventRecord(before, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d, buf.data(), buf.size(), s)); // 2 fails
  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventRecord(after, s));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuEventSynchronize(before));
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuEventSynchronize(after));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s)); // already reported
  ::testing::internal::GetCapturedStderr();
  cu().cuEventDestroy_v2(before);
  cu().cuEventDestroy_v2(after);
  cu().cuStreamDestroy_v2(s);
}

TEST_F(FakeCuda, FailEveryNthCopy)
{
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_FAIL_EVERY", "2"}});
  use_device(0);
  const CUdeviceptr d = alloc(MiB);
  std::vector<unsigned char> buf(64);
  ::testing::internal::CaptureStderr();
  for (int i = 1; i <= 6; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(i % 2 == 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS,
              cu().cuMemcpyDtoH_v2(buf.data(), d, buf.size()));
  }
  ::testing::internal::GetCapturedStderr();
}

TEST_F(FakeCuda, StickyFaultPoisonsEverythingButStillReleases)
{
  const std::string map = path("map");
  init({{"FAKECUDA_GPUS", "total=64M"},
        {"FAKECUDA_FAIL_COPY", "2"},
        {"FAKECUDA_FAIL_MODE", "sticky"},
        {"FAKECUDA_MAP_FILE", map}});
  use_device(0);
  const CUdeviceptr d = alloc(MiB);
  CUstream s = stream();
  CUstream other = stream();
  CUevent ev = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuEventCreate(&ev, 0));
  void *pinned = nullptr;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemHostAlloc(&pinned, 4096, 0));
  std::memset(pinned, 0x11, 4096);

  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d, pinned, 4096, s)); // 1
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(pinned, d, 4096, s)); // 2: queued
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuStreamSynchronize(s));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("sticky CUDA_ERROR_ILLEGAL_ADDRESS")) << err;

  // Everything touching the device now fails the same way...
  CUdeviceptr p = 0;
  std::size_t free = 0, total = 0;
  int n = 0;
  CUstream s2 = nullptr;
  std::vector<unsigned char> buf(16);
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemAlloc_v2(&p, 1));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemGetInfo_v2(&free, &total));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemcpyHtoD_v2(d, buf.data(), buf.size()));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS,
            cu().cuMemcpyDtoHAsync_v2(buf.data(), d, buf.size(), other));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemsetD8_v2(d, 0, 1));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuStreamCreate(&s2, 0));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuStreamSynchronize(other));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuCtxSynchronize());
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuEventRecord(ev, s));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuEventSynchronize(ev));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuDeviceGetCount(&n));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuInit(0));
  // ...except the calls that do not.
  const char *name = nullptr;
  EXPECT_EQ(CUDA_SUCCESS, cu().cuGetErrorName(CUDA_ERROR_ILLEGAL_ADDRESS, &name));
  EXPECT_STREQ("CUDA_ERROR_ILLEGAL_ADDRESS", name);
  int version = 0;
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDriverGetVersion(&version));
  void *fn = nullptr;
  EXPECT_EQ(CUDA_SUCCESS, cu().cuGetProcAddress_v2("cuMemAlloc", &fn, 13000, 0, nullptr));

  // Destructors report the error but still release (LeakSanitizer and the
  // map file are the witnesses), and nothing hangs.
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuEventDestroy_v2(ev));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuStreamDestroy_v2(s));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuStreamDestroy_v2(other));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemFreeHost(pinned));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemFree_v2(d));
  EXPECT_NE(std::string::npos, read_file(map).find("free gpu=0 dptr=0x100000000000\n"));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuDevicePrimaryCtxRelease_v2(0));
  unsigned flags = 0;
  int active = 1;
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuDevicePrimaryCtxGetState(0, &flags, &active));

  // After a reset the next cuInit starts healthy.
  cu().fakecuda_reset();
  unsetenv("FAKECUDA_FAIL_COPY");
  ASSERT_EQ(CUDA_SUCCESS, cu().cuInit(0));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuDeviceGetCount(&n));
}

TEST_F(FakeCuda, TriggerFileTransientFiresOnce)
{
  const std::string trigger = path("trigger");
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_TRIGGER_FILE", trigger}});
  use_device(0);
  const CUdeviceptr d = alloc(MiB);
  CUstream s = stream();
  std::vector<unsigned char> buf(64, 3);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(d, buf.data(), buf.size()));
  write_trigger(trigger, "transient");
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(d, buf.data(), buf.size(), s));
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuStreamSynchronize(s));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("FAKECUDA_TRIGGER_FILE")) << err;
  EXPECT_FALSE(std::filesystem::exists(trigger)); // consumed
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(buf.data(), d, buf.size()));

  // A code may follow the mode.
  write_trigger(trigger, "transient CUDA_ERROR_LAUNCH_FAILED");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_LAUNCH_FAILED, cu().cuMemcpyDtoH_v2(buf.data(), d, buf.size()));
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(buf.data(), d, buf.size()));
  cu().cuStreamDestroy_v2(s);
}

TEST_F(FakeCuda, TriggerFileStickyCorruptsTheContext)
{
  const std::string trigger = path("trigger");
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_TRIGGER_FILE", trigger}});
  use_device(0);
  const CUdeviceptr d = alloc(MiB);
  std::vector<unsigned char> buf(64, 3);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(d, buf.data(), buf.size()));
  write_trigger(trigger, "sticky");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemcpyDtoH_v2(buf.data(), d, buf.size()));
  ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(std::filesystem::exists(trigger)); // sticky is not one-shot
  CUdeviceptr p = 0;
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemAlloc_v2(&p, 1));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemsetD8_v2(d, 0, 1));
}

TEST_F(FakeCuda, TriggerFileStickyWithCode)
{
  const std::string trigger = path("trigger");
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_TRIGGER_FILE", trigger}});
  use_device(0);
  const CUdeviceptr d = alloc(MiB);
  std::vector<unsigned char> buf(64, 3);
  write_trigger(trigger, "sticky 214");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_ECC_UNCORRECTABLE, cu().cuMemcpyHtoD_v2(d, buf.data(), buf.size()));
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CUDA_ERROR_ECC_UNCORRECTABLE, cu().cuCtxSynchronize());
}

// ---- Virtual memory management ------------------------------------------------------------

TEST_F(FakeCuda, VmmGranularityAndPropValidation)
{
  init({{"FAKECUDA_GPUS", "total=64M;total=64M"}});
  // No context needed, as with the real driver.
  std::size_t g = 0;
  CUmemAllocationProp p = pinned_on(1);
  ASSERT_EQ(CUDA_SUCCESS,
            cu().cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  EXPECT_EQ(kGran, g);
  g = 0;
  ASSERT_EQ(CUDA_SUCCESS,
            cu().cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
  EXPECT_EQ(kGran, g);

  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuMemGetAllocationGranularity(nullptr, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuMemGetAllocationGranularity(&g, nullptr, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  p.type = CU_MEM_ALLOCATION_TYPE_MANAGED;
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  p = pinned_on(0);
  p.location.type = CU_MEM_LOCATION_TYPE_HOST;
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  p = pinned_on(2);
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE,
            cu().cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  p = pinned_on(-1);
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE,
            cu().cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("not CU_MEM_ALLOCATION_TYPE_PINNED")) << err;
  EXPECT_NE(std::string::npos, err.find("not CU_MEM_LOCATION_TYPE_DEVICE")) << err;

  // cuMemCreate sizes: nonzero multiples of the granularity.
  p = pinned_on(0);
  CUmemGenericAllocationHandle h = 0;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemCreate(&h, 0, &p, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemCreate(&h, MiB, &p, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemCreate(&h, kGran + 4096, &p, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemCreate(&h, kGran, &p, 1));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemCreate(nullptr, kGran, &p, 0));
  p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  EXPECT_EQ(CUDA_ERROR_NOT_SUPPORTED, cu().cuMemCreate(&h, kGran, &p, 0));
  ::testing::internal::GetCapturedStderr();
  p = pinned_on(0);
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemCreate(&h, 66 * MiB, &p, 0));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemCreate(&h, 64 * MiB, &p, 0)); // the whole GPU
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemCreate(&h, kGran, &p, 0));

  // Needs cuInit like everything else.
  cu().fakecuda_reset();
  EXPECT_EQ(CUDA_ERROR_NOT_INITIALIZED,
            cu().cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  EXPECT_EQ(CUDA_ERROR_NOT_INITIALIZED, cu().cuMemCreate(&h, kGran, &p, 0));
  CUdeviceptr va = 0;
  EXPECT_EQ(CUDA_ERROR_NOT_INITIALIZED, cu().cuMemAddressReserve(&va, kGran, 0, 0, 0));
}

TEST_F(FakeCuda, VmmCreateMapSetAccessRoundTrip)
{
  const std::string file = path("vram");
  init({{"FAKECUDA_GPUS", "total=64M;total=64M"}, {"FAKECUDA_MEMORY_FILE", file}});
  // Reserve, create, map and grant access with no current context.
  const CUdeviceptr va = reserve(TiB); // costs nothing
  EXPECT_EQ(kVmmBase, va);
  const CUmemGenericAllocationHandle h = create(4 * MiB, 1);
  ASSERT_NE(0u, h);
  map_rw(va, 4 * MiB, h, 0, 1);

  use_device(1);
  EXPECT_EQ(60 * MiB, free_mem()); // counted like cuMemAlloc memory
  // First fit in GPU 1's region: the handle is at region offset 0, so the
  // next cuMemAlloc lands after it.
  EXPECT_EQ(kBase + kWindow + 4 * MiB, alloc(MiB));

  const auto data = pattern(3 * MiB, 4);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(va + 12345, data.data(), data.size()));
  std::vector<unsigned char> back(data.size());
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(back.data(), va + 12345, back.size()));
  EXPECT_EQ(data, back);
  EXPECT_EQ(data, read_at(file, 64 * MiB + 12345, data.size())); // GPU 1's region starts at 64 MiB

  CUstream s = stream();
  std::vector<unsigned char> tail(4096, 0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8Async(va + 4 * MiB - 4096, 0x5c, 4096, s));
  ASSERT_EQ(CUDA_SUCCESS,
            cu().cuMemcpyDtoHAsync_v2(tail.data(), va + 4 * MiB - 4096, tail.size(), s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ(std::vector<unsigned char>(4096, 0x5c), tail);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8_v2(va, 0x11, 16));
  EXPECT_EQ(std::vector<unsigned char>(16, 0x11), read_at(file, 64 * MiB, 16));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));

  // cuMemFree knows nothing of VMM addresses, and the linear window does
  // not alias cuMemCreate memory (region offset 0 of GPU 1 is the handle's).
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemFree_v2(va));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemFree_v2(kBase + kWindow));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyDtoH_v2(back.data(), kBase + kWindow, 16));
  ::testing::internal::GetCapturedStderr();

  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, 4 * MiB));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(va, TiB));
  EXPECT_EQ(62 * MiB, free_mem()); // only the cuMemAlloc block is left
}

// FAKECUDA_FAIL_CALL: the Nth call of an entry point fails and does
// nothing; the calls before and after it work.
TEST_F(FakeCuda, VmmFailCallFailsTheNthCallAndDoesNothing)
{
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_FAIL_CALL", "cuMemRelease:2,cuMemUnmap:1"}});
  use_device(0);
  const CUmemGenericAllocationHandle h1 = create(kGran), h2 = create(kGran);
  const CUdeviceptr va = reserve(16 * MiB);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(va, kGran, 0, h1, 0));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemUnmap(va, kGran)); // call 1
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("injected failure of cuMemUnmap call 1")) << err;
  // Still mapped: mapping over it is refused, unmapping works now.
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(va, kGran, 0, h2, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, kGran));        // call 2
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h1));             // call 1
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemRelease(h2)); // call 2: h2 lives on
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(va, kGran, 0, h2, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, kGran));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h2));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(va, 16 * MiB));
}

TEST_F(FakeCuda, VmmCopySpansMappingsBackedByScatteredMemory)
{
  const std::string file = path("vram");
  const std::string map = path("map");
  init(
    {{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_MEMORY_FILE", file}, {"FAKECUDA_MAP_FILE", map}});
  use_device(0);
  // Physical: h1 at region 0, h2 at 2 MiB, h3 (4 MiB) at 4 MiB.
  const CUmemGenericAllocationHandle h1 = create(kGran), h2 = create(kGran), h3 = create(4 * MiB);
  const CUdeviceptr va = reserve(64 * MiB);
  // Virtual order differs from the physical one, and the last mapping is
  // the second half of h3 (a nonzero offset).
  map_rw(va, kGran, h2);                    // va + [0, 2M)  -> file [2M, 4M)
  map_rw(va + kGran, kGran, h1);            // va + [2M, 4M) -> file [0, 2M)
  map_rw(va + 2 * kGran, kGran, h3, kGran); // va + [4M, 6M) -> file [6M, 8M)

  // One copy from 1 MiB to 5 MiB: three pieces at three file offsets.
  const auto data = pattern(4 * MiB, 8);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(va + MiB, data.data(), data.size()));
  const std::string lines = read_file(map);
  EXPECT_NE(std::string::npos, lines.find("map dptr=0x600000000000 size=2097152 handle=0x"))
    << lines;
  EXPECT_NE(std::string::npos, lines.find("offset=0 file_offset=2097152\n")) << lines;
  EXPECT_NE(std::string::npos, lines.find("offset=0 file_offset=0\n")) << lines;
  EXPECT_NE(std::string::npos, lines.find("offset=2097152 file_offset=6291456\n")) << lines;
  auto expect_file = [&](std::uint64_t file_offset, std::size_t from, std::size_t n) {
    EXPECT_EQ(std::vector<unsigned char>(data.begin() + static_cast<std::ptrdiff_t>(from),
                                         data.begin() + static_cast<std::ptrdiff_t>(from + n)),
              read_at(file, file_offset, n))
      << "file offset " << file_offset;
  };
  expect_file(2 * MiB + MiB, 0, MiB); // second half of h2
  expect_file(0, MiB, 2 * MiB);       // all of h1
  expect_file(6 * MiB, 3 * MiB, MiB); // first half of h3's mapped half
  EXPECT_EQ(std::vector<unsigned char>(MiB, 0),
            read_at(file, 4 * MiB, MiB)); // h3's unmapped half untouched

  // Back through an asynchronous copy, and a memset across the seams.
  CUstream s = stream();
  std::vector<unsigned char> back(data.size());
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoHAsync_v2(back.data(), va + MiB, back.size(), s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ(data, back);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemsetD8Async(va + kGran - 10, 0xee, 20, s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s));
  EXPECT_EQ(std::vector<unsigned char>(10, 0xee), read_at(file, 4 * MiB - 10, 10)); // end of h2
  EXPECT_EQ(std::vector<unsigned char>(10, 0xee), read_at(file, 0, 10));            // start of h1
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));

  // One cuMemUnmap may cover several adjacent mappings.
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, 3 * kGran));
  for (auto h : {h1, h2, h3})
    ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(va, 64 * MiB));
  EXPECT_EQ(64 * MiB, free_mem());
}

TEST_F(FakeCuda, VmmAccessNeedsMappingAndSetAccess)
{
  init({{"FAKECUDA_GPUS", "total=64M;total=64M"}, {"FAKECUDA_LATENCY_US", "100000"}});
  use_device(0);
  const CUdeviceptr va = reserve(16 * MiB);
  const CUmemGenericAllocationHandle h = create(4 * MiB);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(va, 4 * MiB, 0, h, 0));
  CUstream s = stream();
  std::vector<unsigned char> buf(MiB, 1);

  ::testing::internal::CaptureStderr();
  // Mapped, but no cuMemSetAccess yet.
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(va, buf.data(), 16));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyDtoHAsync_v2(buf.data(), va, 16, s));
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos,
            err.find("fakecuda: out-of-bounds cuMemcpyHtoD_v2: device range [0x600000000000, +16)"))
    << err;
  EXPECT_NE(std::string::npos, err.find("GPU 0 has no access")) << err;

  // cuMemSetAccess must cover whole mappings, all mapped.
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, set_access(va, 2 * MiB));         // half a mapping
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, set_access(va, 6 * MiB));         // runs into unmapped VA
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, set_access(va + 4 * MiB, kGran)); // nothing mapped
  const CUmemAccessDesc host{{CU_MEM_LOCATION_TYPE_HOST, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemSetAccess(va, 4 * MiB, &host, 1));
  EXPECT_EQ(CUDA_ERROR_INVALID_DEVICE, set_access(va, 4 * MiB, 2));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            set_access(va, 4 * MiB, 0, static_cast<CUmemAccess_flags>(2)));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemSetAccess(va, 4 * MiB, nullptr, 1));
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("must consist of whole mappings")) << err;

  // Access for the other GPU does not help GPU 0's context.
  ASSERT_EQ(CUDA_SUCCESS, set_access(va, 4 * MiB, 1));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(va, buf.data(), 16));
  ::testing::internal::GetCapturedStderr();
  // Read-only: reads work, writes and memsets do not.
  ASSERT_EQ(CUDA_SUCCESS, set_access(va, 4 * MiB, 0, CU_MEM_ACCESS_FLAGS_PROT_READ));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(buf.data(), va, 16));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(va, buf.data(), 16));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemsetD8_v2(va, 0, 16));
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("read-only for GPU 0")) << err;

  ASSERT_EQ(CUDA_SUCCESS, set_access(va, 4 * MiB));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(va, buf.data(), 16));
  ::testing::internal::CaptureStderr();
  // Past the mapping's end, into reserved but unmapped VA; and outside
  // any reservation.
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(va + 4 * MiB - 8, buf.data(), 16));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemsetD8Async(va + 5 * MiB, 0, 1, s));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyDtoH_v2(buf.data(), va + 16 * MiB, 1));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyDtoH_v2(buf.data(), kVmmBase - 1, 1));
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("byte 0x600000400000 is reserved but not mapped")) << err;
  EXPECT_NE(std::string::npos, err.find("out-of-bounds cuMemsetD8Async")) << err;
  EXPECT_NE(std::string::npos, err.find("byte 0x600001000000 is not in a reservation")) << err;

  // Checked again when it runs: access revoked while the copy is queued.
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(va, buf.data(), 16, s));
  ASSERT_EQ(CUDA_SUCCESS, set_access(va, 4 * MiB, 0, CU_MEM_ACCESS_FLAGS_PROT_NONE));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuStreamSynchronize(s));
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("changed between issue and when the queued operation ran"))
    << err;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
}

TEST_F(FakeCuda, VmmUnmapMakesTheRangeUnusableAndFreesReleasedMemory)
{
  init({{"FAKECUDA_GPUS", "total=64M"}});
  use_device(0);
  const CUdeviceptr va = reserve(32 * MiB);
  const CUmemGenericAllocationHandle a = create(8 * MiB), b = create(8 * MiB);
  EXPECT_EQ(48 * MiB, free_mem());
  map_rw(va, 8 * MiB, a);
  map_rw(va + 8 * MiB, 8 * MiB, b);
  std::vector<unsigned char> buf(64, 7);
  ASSERT_EQ(CUDA_SUCCESS,
            cu().cuMemcpyHtoD_v2(va + 8 * MiB - 32, buf.data(), buf.size())); // spans both

  // Only whole mappings can be unmapped.
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemUnmap(va, 4 * MiB));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemUnmap(va + kGran, 8 * MiB));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemUnmap(va, 24 * MiB)); // beyond b
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemUnmap(va + 16 * MiB, 8 * MiB));
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(
    std::string::npos,
    err.find("fakecuda: cuMemUnmap(0x600000000000, 4194304): the range ends inside a mapping"))
    << err;

  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(a)); // still mapped: memory stays
  EXPECT_EQ(48 * MiB, free_mem());
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, 8 * MiB));
  EXPECT_EQ(56 * MiB, free_mem()); // a's memory is gone now
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyHtoD_v2(va, buf.data(), 1));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuMemcpyHtoD_v2(va + 8 * MiB - 32, buf.data(), buf.size()));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemUnmap(va, 8 * MiB)); // already unmapped
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CUDA_SUCCESS,
            cu().cuMemcpyHtoD_v2(va + 8 * MiB, buf.data(), buf.size())); // b is still there

  // Unmapped but not released: the memory stays allocated; a new mapping
  // of it starts without access.
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va + 8 * MiB, 8 * MiB));
  EXPECT_EQ(56 * MiB, free_mem());
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(va, 8 * MiB, 0, b, 0));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemcpyDtoH_v2(buf.data(), va, 1));
  ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(CUDA_SUCCESS, set_access(va, 8 * MiB));
  std::vector<unsigned char> back(32, 0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(back.data(), va, back.size()));
  EXPECT_EQ(std::vector<unsigned char>(32, 7), back); // b's bytes, remapped
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, 8 * MiB));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(b));
  EXPECT_EQ(64 * MiB, free_mem());
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(va, 32 * MiB));
}

TEST_F(FakeCuda, VmmReleaseWhileMappedIsDeferred)
{
  const std::string map = path("map");
  init({{"FAKECUDA_GPUS", "total=64M"}, {"FAKECUDA_MAP_FILE", map}});
  use_device(0);
  const CUdeviceptr va = reserve(8 * MiB);
  const CUmemGenericAllocationHandle h = create(4 * MiB);
  // Mapped twice; the memory goes with the last mapping.
  map_rw(va, 4 * MiB, h);
  map_rw(va + 4 * MiB, 4 * MiB, h);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h));
  EXPECT_EQ(60 * MiB, free_mem());
  // The mappings still work, and alias the same memory.
  std::vector<unsigned char> buf(16, 3), back(16, 0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(va, buf.data(), buf.size()));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(back.data(), va + 4 * MiB, back.size()));
  EXPECT_EQ(buf, back);

  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, 4 * MiB));
  EXPECT_EQ(60 * MiB, free_mem()); // one mapping left

  // The handle itself is dead.
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemRelease(h));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(va, 4 * MiB, 0, h, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemRelease(0x1234));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("already released")) << err;
  EXPECT_NE(std::string::npos, err.find("cuMemRelease(0x1234): not a cuMemCreate handle")) << err;
  EXPECT_NE(std::string::npos, err.find("is not a live cuMemCreate handle")) << err;

  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va + 4 * MiB, 4 * MiB));
  EXPECT_EQ(64 * MiB, free_mem());
  const std::string lines = read_file(map);
  char want[64];
  std::snprintf(want, sizeof want, "release handle=0x%llx deferred\n",
                static_cast<unsigned long long>(h));
  EXPECT_NE(std::string::npos, lines.find(want)) << lines;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(va, 8 * MiB));
}

TEST_F(FakeCuda, VmmAddressFreeWithMappingsLeftFails)
{
  init({{"FAKECUDA_GPUS", "total=64M"}});
  const CUdeviceptr va = reserve(16 * MiB);
  const CUmemGenericAllocationHandle h = create(kGran);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(va + 6 * MiB, kGran, 0, h, 0));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAddressFree(va, 16 * MiB));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAddressFree(va, 8 * MiB)); // not the reserved size
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAddressFree(va + kGran, 2 * MiB)); // not a start
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(
    std::string::npos,
    err.find("fakecuda: cuMemAddressFree(0x600000000000, 16777216): 1 mapping(s) remain inside"))
    << err;
  EXPECT_NE(std::string::npos, err.find("the size differs")) << err;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va + 6 * MiB, kGran));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(va, 16 * MiB));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAddressFree(va, 16 * MiB)); // twice
  ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h));
}

TEST_F(FakeCuda, VmmReservationAndMapRules)
{
  init({{"FAKECUDA_GPUS", "total=64M"}});
  const CUdeviceptr a = reserve(TiB);
  const CUdeviceptr b = reserve(TiB);
  EXPECT_EQ(kVmmBase, a);
  EXPECT_EQ(kVmmBase + TiB, b); // first fit, disjoint
  const CUdeviceptr small = reserve(kGran);
  const CUdeviceptr aligned = reserve(kGran, GiB);
  EXPECT_EQ(0u, aligned % GiB);
  EXPECT_GT(aligned, small);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(a, TiB));
  EXPECT_EQ(kVmmBase, reserve(4 * MiB)); // the hole is reused
  CUdeviceptr p = 0;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAddressReserve(&p, 0, 0, 0, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAddressReserve(&p, MiB, 0, 0, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAddressReserve(&p, kGran, 3 * MiB, 0, 0));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAddressReserve(&p, kGran, 0, 0, 1));
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemAddressReserve(nullptr, kGran, 0, 0, 0));
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemAddressReserve(&p, 64 * TiB, 0, 0, 0));
  EXPECT_EQ(CUDA_SUCCESS,
            cu().cuMemAddressReserve(&p, kGran, 0, 0x700000000000ULL, 0)); // hint ignored
  EXPECT_TRUE(p >= kVmmBase && p < kVmmBase + 2 * TiB);

  const CUmemGenericAllocationHandle h = create(8 * MiB);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b, 8 * MiB, 0, h + 1000, 0)); // unknown handle
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b + 4096, kGran, 0, h, 0));   // unaligned VA
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b, MiB, 0, h, 0));            // unaligned size
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b, kGran, MiB, h, 0));       // unaligned offset
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b, 4 * MiB, 6 * MiB, h, 0)); // past the handle
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b, 0, 0, h, 0));             // empty
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b, kGran, 0, h, 1));         // flags
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuMemMap(small, 4 * MiB, 0, h, 0)); // past the reservation
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b - kGran, 4 * MiB, 0, h, 0)); // straddles two
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE,
            cu().cuMemMap(kVmmBase + 100 * TiB, kGran, 0, h, 0)); // nowhere
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("not inside one reservation")) << err;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(b + 4 * MiB, 4 * MiB, 4 * MiB, h, 0));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b + 2 * MiB, 4 * MiB, 0, h, 0)); // overlaps
  EXPECT_EQ(CUDA_ERROR_INVALID_VALUE, cu().cuMemMap(b + 6 * MiB, kGran, 0, h, 0));   // inside
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("overlaps an existing mapping")) << err;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(b, 4 * MiB, 0, h, 0)); // right below: fine
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(b, 8 * MiB));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h));
}

TEST_F(FakeCuda, VmmDisabledPerGpu)
{
  init({{"FAKECUDA_GPUS", "total=64M,vmm=0;total=64M, vmm = 1"}});
  int v = -1;
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGetAttribute(
                            &v, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 0));
  EXPECT_EQ(0, v);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDeviceGetAttribute(
                            &v, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 1));
  EXPECT_EQ(1, v);
  std::size_t g = 0;
  const CUmemAllocationProp p0 = pinned_on(0), p1 = pinned_on(1);
  EXPECT_EQ(CUDA_ERROR_NOT_SUPPORTED,
            cu().cuMemGetAllocationGranularity(&g, &p0, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  EXPECT_EQ(CUDA_SUCCESS,
            cu().cuMemGetAllocationGranularity(&g, &p1, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  CUmemGenericAllocationHandle h = 0;
  EXPECT_EQ(CUDA_ERROR_NOT_SUPPORTED, cu().cuMemCreate(&h, kGran, &p0, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemCreate(&h, kGran, &p1, 0));
  const CUdeviceptr va = reserve(kGran); // one GPU supports it
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(va, kGran, 0, h, 0));
  EXPECT_EQ(CUDA_ERROR_NOT_SUPPORTED, set_access(va, kGran, 0));
  EXPECT_EQ(CUDA_SUCCESS, set_access(va, kGran, 1));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, kGran));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h));

  cu().fakecuda_reset();
  set("FAKECUDA_GPUS", "vmm=0");
  ASSERT_EQ(CUDA_SUCCESS, cu().cuInit(0));
  CUdeviceptr p = 0;
  EXPECT_EQ(CUDA_ERROR_NOT_SUPPORTED, cu().cuMemAddressReserve(&p, kGran, 0, 0, 0));
}

TEST_F(FakeCuda, VmmIsNotDestroyedWithThePrimaryContext)
{
  init({{"FAKECUDA_GPUS", "total=64M"}});
  use_device(0);
  const CUdeviceptr va = reserve(8 * MiB);
  const CUmemGenericAllocationHandle h = create(4 * MiB);
  map_rw(va, 4 * MiB, h);
  const CUdeviceptr linear = alloc(MiB);
  std::vector<unsigned char> buf(16, 9);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(va, buf.data(), buf.size()));

  ::testing::internal::CaptureStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuDevicePrimaryCtxRelease_v2(0));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("1 allocation(s)")) << err; // the cuMemAlloc one only

  use_device(0);
  EXPECT_EQ(60 * MiB, free_mem()); // the handle still holds its 4 MiB
  std::vector<unsigned char> back(16, 0);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyDtoH_v2(back.data(), va, back.size()));
  EXPECT_EQ(buf, back);
  EXPECT_EQ(linear, alloc(MiB)); // the cuMemAlloc block did go
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, 4 * MiB));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(va, 8 * MiB));

  // fakecuda_reset() does destroy everything.
  create(4 * MiB);
  reserve(8 * MiB);
  cu().fakecuda_reset();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuInit(0));
  use_device(0);
  EXPECT_EQ(64 * MiB, free_mem());
  EXPECT_EQ(kVmmBase, reserve(8 * MiB));
}

TEST_F(FakeCuda, VmmUnmapWaitsForQueuedWork)
{
  const std::string file = path("vram");
  init({{"FAKECUDA_GPUS", "total=64M"},
        {"FAKECUDA_MEMORY_FILE", file},
        {"FAKECUDA_LATENCY_US", "100000"}});
  use_device(0);
  const CUdeviceptr va = reserve(8 * MiB);
  const CUmemGenericAllocationHandle h = create(8 * MiB);
  map_rw(va, 8 * MiB, h);
  CUstream s = stream();
  const auto data = pattern(MiB, 6);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(va + 3 * MiB, data.data(), data.size(), s));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoDAsync_v2(va + 5 * MiB, data.data(), data.size(), s));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va, 8 * MiB)); // waits for both copies
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(150));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuStreamSynchronize(s)); // they ran, on mapped memory
  EXPECT_EQ(data, read_at(file, 3 * MiB, data.size()));
  EXPECT_EQ(data, read_at(file, 5 * MiB, data.size()));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(h));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuStreamDestroy_v2(s));
}

TEST_F(FakeCuda, VmmConcurrentCopiesAndRemapping)
{
  // Threads copy through their own chunk while others map and unmap
  // theirs: nobody's copy may see memory change under it.
  init({{"FAKECUDA_GPUS", "total=256M"}});
  CUcontext ctx = use_device(0);
  const CUdeviceptr va = reserve(64 * MiB);
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      if (cu().cuCtxSetCurrent(ctx) != CUDA_SUCCESS) return void(++failures);
      CUstream s = nullptr;
      if (cu().cuStreamCreate(&s, 0) != CUDA_SUCCESS) return void(++failures);
      const CUdeviceptr chunk = va + static_cast<CUdeviceptr>(t) * 8 * MiB;
      const CUmemAllocationProp p = pinned_on(0);
      const CUmemAccessDesc d = access_for(0);
      std::vector<unsigned char> back(256 * 1024);
      for (unsigned i = 0; i < 20; ++i) {
        CUmemGenericAllocationHandle h = 0;
        const auto data = pattern(back.size(), static_cast<unsigned>(t) * 100 + i);
        if (cu().cuMemCreate(&h, 4 * MiB, &p, 0) != CUDA_SUCCESS ||
            cu().cuMemMap(chunk, 4 * MiB, 0, h, 0) != CUDA_SUCCESS ||
            cu().cuMemSetAccess(chunk, 4 * MiB, &d, 1) != CUDA_SUCCESS ||
            cu().cuMemcpyHtoDAsync_v2(chunk + MiB, data.data(), data.size(), s) != CUDA_SUCCESS ||
            cu().cuMemcpyDtoHAsync_v2(back.data(), chunk + MiB, back.size(), s) != CUDA_SUCCESS ||
            cu().cuMemRelease(h) != CUDA_SUCCESS ||
            cu().cuMemUnmap(chunk, 4 * MiB) != CUDA_SUCCESS ||
            cu().cuStreamSynchronize(s) != CUDA_SUCCESS || back != data)
          ++failures;
      }
      if (cu().cuStreamDestroy_v2(s) != CUDA_SUCCESS) ++failures;
    });
  }
  for (auto &th : threads)
    th.join();
  EXPECT_EQ(0, failures.load());
  EXPECT_EQ(256 * MiB, free_mem());
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(va, 64 * MiB));
}

TEST_F(FakeCuda, VmmStickyFaultStillReleases)
{
  const std::string map = path("map");
  init({{"FAKECUDA_GPUS", "total=64M"},
        {"FAKECUDA_FAIL_COPY", "2"},
        {"FAKECUDA_FAIL_MODE", "sticky"},
        {"FAKECUDA_MAP_FILE", map}});
  use_device(0);
  const CUdeviceptr va = reserve(8 * MiB);
  const CUmemGenericAllocationHandle h = create(4 * MiB), spare = create(kGran);
  map_rw(va, 4 * MiB, h);
  std::vector<unsigned char> buf(64, 1);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemcpyHtoD_v2(va, buf.data(), buf.size())); // copy 1
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemcpyDtoH_v2(buf.data(), va, buf.size())); // copy 2
  ::testing::internal::GetCapturedStderr();

  std::size_t g = 0;
  const CUmemAllocationProp p = pinned_on(0);
  CUmemGenericAllocationHandle h2 = 0;
  CUdeviceptr p2 = 0;
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS,
            cu().cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemCreate(&h2, kGran, &p, 0));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemAddressReserve(&p2, kGran, 0, 0, 0));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemMap(va + 4 * MiB, kGran, 0, spare, 0));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, set_access(va, 4 * MiB));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemsetD8_v2(va, 0, 1));

  // Cleanup reports the code but still does its work.
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemUnmap(va, 4 * MiB));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemRelease(h));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemRelease(spare));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemAddressFree(va, 8 * MiB));
  const std::string lines = read_file(map);
  EXPECT_NE(std::string::npos, lines.find("unmap dptr=0x600000000000 size=4194304\n")) << lines;
  char want[64];
  std::snprintf(want, sizeof want, "release handle=0x%llx\n", static_cast<unsigned long long>(h));
  EXPECT_NE(std::string::npos, lines.find(want)) << lines;
  std::snprintf(want, sizeof want, "release handle=0x%llx\n",
                static_cast<unsigned long long>(spare));
  EXPECT_NE(std::string::npos, lines.find(want)) << lines;
  // Really released: a second release / free finds nothing (still sticky).
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemRelease(h));
  EXPECT_EQ(CUDA_ERROR_ILLEGAL_ADDRESS, cu().cuMemAddressFree(va, 8 * MiB));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("not a cuMemCreate handle")) << err;
  EXPECT_NE(std::string::npos, err.find("not the start of a reservation")) << err;
}

TEST_F(FakeCuda, VmmMapFileLines)
{
  const std::string map = path("map");
  init({{"FAKECUDA_GPUS", "total=64M;total=64M"}, {"FAKECUDA_MAP_FILE", map}});
  const CUdeviceptr va = reserve(16 * MiB);
  const CUmemGenericAllocationHandle a = create(4 * MiB, 1);
  const CUmemGenericAllocationHandle b = create(kGran, 1);
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(va + 2 * MiB, kGran, 2 * MiB, a, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemMap(va + 4 * MiB, kGran, 0, b, 0));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(b));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemUnmap(va + 2 * MiB, 4 * MiB));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemRelease(a));
  auto hex = [](CUmemGenericAllocationHandle h) {
    char text[32];
    std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(h));
    return std::string(text);
  };
  EXPECT_EQ("create gpu=1 handle=" + hex(a) +
              " file_offset=67108864 size=4194304\n"
              "create gpu=1 handle=" +
              hex(b) +
              " file_offset=71303168 size=2097152\n"
              "map dptr=0x600000200000 size=2097152 handle=" +
              hex(a) +
              " offset=2097152 file_offset=69206016\n"
              "map dptr=0x600000400000 size=2097152 handle=" +
              hex(b) +
              " offset=0 file_offset=71303168\n"
              "release handle=" +
              hex(b) +
              " deferred\n"
              "unmap dptr=0x600000200000 size=2097152\n"
              "unmap dptr=0x600000400000 size=2097152\n"
              "release handle=" +
              hex(a) + "\n",
            read_file(map));
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemAddressFree(va, 16 * MiB));
}

TEST_F(FakeCuda, VmmCallsAreTraced)
{
  set("FAKECUDA_LOG", "1");
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuInit(0));
  const CUmemGenericAllocationHandle h = create(kGran);
  const CUdeviceptr va = reserve(kGran);
  map_rw(va, kGran, h);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("cuMemCreate(size=2097152 gpu=0 flags=0x0 -> 0x")) << err;
  EXPECT_NE(std::string::npos, err.find("cuMemAddressReserve(size=2097152 alignment=0 addr=0x0 "
                                        "flags=0x0 -> 0x600000000000) = CUDA_SUCCESS"))
    << err;
  EXPECT_NE(std::string::npos,
            err.find("cuMemMap(ptr=0x600000000000 size=2097152 offset=0 handle=0x"))
    << err;
  EXPECT_NE(
    std::string::npos,
    err.find(
      "cuMemSetAccess(ptr=0x600000000000 size=2097152 count=1 gpu=0 flags=0x3) = CUDA_SUCCESS"))
    << err;
  ::testing::internal::CaptureStderr();
  cu().cuMemUnmap(va, kGran);
  cu().cuMemRelease(h);
  cu().cuMemAddressFree(va, kGran);
  ::testing::internal::GetCapturedStderr();
}

// ---- Free-memory budget file ---------------------------------------------------------------

TEST_F(FakeCuda, FreeFileLowersAndRaisesTheBudget)
{
  const std::string budget = path("free");
  init({{"FAKECUDA_GPUS", "total=1G;total=1G,free=512M"}, {"FAKECUDA_FREE_FILE", budget}});
  use_device(0);
  EXPECT_EQ(GiB, free_mem()); // no file yet: the configured free
  alloc(192 * MiB);
  write_trigger(budget, "256M"); // temp + rename, like the trigger file
  EXPECT_EQ(64 * MiB, free_mem());
  CUmemGenericAllocationHandle h = 0;
  const CUmemAllocationProp p = pinned_on(0);
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemCreate(&h, 128 * MiB, &p, 0));
  CUdeviceptr d = 0;
  EXPECT_EQ(CUDA_ERROR_OUT_OF_MEMORY, cu().cuMemAlloc_v2(&d, 65 * MiB));
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemAlloc_v2(&d, 64 * MiB));
  EXPECT_EQ(0u, free_mem());
  ASSERT_EQ(CUDA_SUCCESS, cu().cuMemFree_v2(d));

  write_trigger(budget, "1G");
  EXPECT_EQ(CUDA_SUCCESS, cu().cuMemCreate(&h, 128 * MiB, &p, 0));
  EXPECT_EQ(GiB - 320 * MiB, free_mem());
  write_trigger(budget, "100M"); // less than we hold already: nothing left
  EXPECT_EQ(0u, free_mem());

  // Entry i is GPU i; fewer entries leave the others at their `free`.
  use_device(1);
  EXPECT_EQ(512 * MiB, free_mem());
  write_trigger(budget, " 2G\n\t300M \n");
  EXPECT_EQ(300 * MiB, free_mem());
  use_device(0);
  EXPECT_EQ(GiB - 320 * MiB, free_mem()); // capped at total

  // Unparsable: one message per distinct content, and the last valid
  // reading stays.
  ::testing::internal::CaptureStderr();
  write_trigger(budget, "512M lots");
  EXPECT_EQ(GiB - 320 * MiB, free_mem());
  EXPECT_EQ(GiB - 320 * MiB, free_mem());
  write_trigger(budget, "1G 1G 1G"); // more entries than GPUs
  EXPECT_EQ(GiB - 320 * MiB, free_mem());
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(1u,
            [&] {
              std::size_t n = 0;
              for (auto pos = err.find("'lots'"); pos != std::string::npos;
                   pos = err.find("'lots'", pos + 1))
                ++n;
              return n;
            }())
    << err;
  EXPECT_NE(std::string::npos, err.find("fakecuda: FAKECUDA_FREE_FILE: " + budget +
                                        ": entry 1 ('lots') is not a size"))
    << err;
  EXPECT_NE(std::string::npos, err.find("more entries than the 2 GPU(s)")) << err;
  use_device(1);
  EXPECT_EQ(300 * MiB, free_mem());

  // Empty or missing: back to the configured values.
  write_trigger(budget, "");
  EXPECT_EQ(512 * MiB, free_mem());
  write_trigger(budget, "1M");
  EXPECT_EQ(512 * MiB, free_mem()); // GPU 1 has no entry
  ASSERT_EQ(0, std::remove(budget.c_str()));
  use_device(0);
  EXPECT_EQ(GiB - 320 * MiB, free_mem());
}

// ---- Debug log
// --------------------------------------------------------------------------------------

TEST_F(FakeCuda, LogTracesCalls)
{
  set("FAKECUDA_LOG", "1");
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(CUDA_SUCCESS, cu().cuInit(0));
  int n = 0;
  cu().cuDeviceGetCount(&n);
  CUdeviceptr p = 0;
  cu().cuMemAlloc_v2(&p, 1);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(std::string::npos, err.find("cuInit(Flags=0) = CUDA_SUCCESS")) << err;
  EXPECT_NE(std::string::npos, err.find("cuDeviceGetCount(-> 1) = CUDA_SUCCESS")) << err;
  EXPECT_NE(std::string::npos,
            err.find("cuMemAlloc_v2(bytesize=1 -> 0x0) = CUDA_ERROR_INVALID_CONTEXT"))
    << err;
}

} // namespace
