#include "config/device_selector.hpp"

#include <gtest/gtest.h>

using namespace vram;

TEST(DeviceSelector, Index)
{
  auto s = parse_device_selector("3");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, DeviceSelector::Kind::index);
  EXPECT_EQ(s->index, 3u);
}

TEST(DeviceSelector, UuidWithAndWithoutPrefix)
{
  const char *with = "GPU-8a3c1f2e-0b4d-4e5f-9a6b-7c8d9e0f1a2b";
  auto a = parse_device_selector(with);
  auto b = parse_device_selector("8A3C1F2E-0B4D-4E5F-9A6B-7C8D9E0F1A2B");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->kind, DeviceSelector::Kind::uuid);
  EXPECT_EQ(a->uuid, b->uuid);
  EXPECT_EQ(a->uuid[0], 0x8a);
  EXPECT_EQ(a->uuid[15], 0x2b);
  EXPECT_EQ(format_gpu_uuid(a->uuid), with);
}

TEST(DeviceSelector, PciInTheFormsToolsPrint)
{
  auto lspci = parse_device_selector("0000:41:00.0");
  auto smi = parse_device_selector("00000000:41:00.0");
  auto short_form = parse_device_selector("41:00.0");
  ASSERT_TRUE(lspci && smi && short_form);
  EXPECT_EQ(lspci->kind, DeviceSelector::Kind::pci);
  EXPECT_EQ(lspci->pci, smi->pci);
  EXPECT_EQ(lspci->pci, short_form->pci);
  EXPECT_EQ(lspci->pci.bus, 0x41u);
  EXPECT_EQ(format_pci_address(lspci->pci), "0000:41:00.0");
}

TEST(DeviceSelector, RejectsGarbage)
{
  for (const char *bad : {"", "-1", "gpu0", "GPU-1234", "0000:41:00", "0000:41:20.0",
                          "0000:41:00.8", "zz:00.0", "12345"})
    EXPECT_FALSE(parse_device_selector(bad)) << bad;
}
