#include "settings.hpp"

#include <gtest/gtest.h>

using namespace integrity;

namespace {

std::string error_of(std::string_view key, std::string_view value)
{
  Settings s;
  try {
    apply_setting(s, key, value);
  } catch (const SettingsError &e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST(IntegritySettings, Defaults)
{
  const Settings s;
  EXPECT_EQ(s.block_size, 4096u);
  EXPECT_EQ(s.mlock, MlockPolicy::attempt);
}

TEST(IntegritySettings, BlockSizes)
{
  for (auto [text, bytes] :
       std::initializer_list<std::pair<const char *, uint32_t>>{{"512", 512},
                                                                {"4096", 4096},
                                                                {"4K", 4096},
                                                                {"4k", 4096},
                                                                {"64K", 65536},
                                                                {"1M", 1u << 20},
                                                                {"1048576", 1u << 20}}) {
    Settings s;
    apply_setting(s, "integrity-block-size", text);
    EXPECT_EQ(s.block_size, bytes) << text;
  }
}

TEST(IntegritySettings, BadBlockSizesNameTheParameterAndTheAcceptedForms)
{
  for (const char *bad : {"", "0", "256", "1000", "4097", "2M", "abc", "4KB", "-4096", "4 K",
                          "99999999999999999999", "18014398509481984K"}) {
    const std::string e = error_of("integrity-block-size", bad);
    EXPECT_NE(e.find(std::string("integrity-block-size=") + bad + ":"), std::string::npos) << e;
    EXPECT_NE(e.find("power of two from 512 to 1M"), std::string::npos) << e;
  }
}

TEST(IntegritySettings, Mlock)
{
  Settings s;
  apply_setting(s, "integrity-mlock", "require");
  EXPECT_EQ(s.mlock, MlockPolicy::require);
  apply_setting(s, "integrity-mlock", "off");
  EXPECT_EQ(s.mlock, MlockPolicy::off);
  apply_setting(s, "integrity-mlock", "attempt");
  EXPECT_EQ(s.mlock, MlockPolicy::attempt);
  const std::string e = error_of("integrity-mlock", "yes");
  EXPECT_NE(e.find("integrity-mlock=yes: expected 'attempt', 'require' or 'off'"),
            std::string::npos)
    << e;
}

TEST(IntegritySettings, EveryIntegrityKeyIsOursAndUnknownOnesAreRefused)
{
  EXPECT_TRUE(is_filter_key("integrity-block-size"));
  EXPECT_TRUE(is_filter_key("integrity-blocksize"));
  EXPECT_FALSE(is_filter_key("size"));
  EXPECT_FALSE(is_filter_key("block-size"));
  const std::string e = error_of("integrity-blocksize", "4096");
  EXPECT_NE(e.find("unknown integrity filter parameter 'integrity-blocksize'"), std::string::npos);
  EXPECT_NE(e.find("integrity-block-size, integrity-mlock"), std::string::npos);
}
