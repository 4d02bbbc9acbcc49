#include "config/device_selector.hpp"

#include <cctype>
#include <cstdio>

namespace vram {
namespace {

int hex_value(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix)
{
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

// Parses 1..max_digits hex digits; the whole field must be consumed.
std::optional<uint32_t> parse_hex_field(std::string_view s, size_t max_digits)
{
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    const int h = hex_value(c);
    if (h < 0) return std::nullopt;
    v = v * 16 + static_cast<uint32_t>(h);
  }
  return v;
}

} // namespace

std::optional<GpuUuid> parse_gpu_uuid(std::string_view text)
{
  if (starts_with_nocase(text, "GPU-")) text.remove_prefix(4);
  // 8-4-4-4-12 hex digits.
  static constexpr size_t dashes[] = {8, 13, 18, 23};
  if (text.size() != 36) return std::nullopt;
  GpuUuid uuid{};
  size_t nibble = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    bool is_dash_pos = false;
    for (size_t d : dashes)
      is_dash_pos |= (i == d);
    if (is_dash_pos) {
      if (text[i] != '-') return std::nullopt;
      continue;
    }
    const int h = hex_value(text[i]);
    if (h < 0) return std::nullopt;
    uuid[nibble / 2] = static_cast<uint8_t>(uuid[nibble / 2] | (h << (nibble % 2 ? 0 : 4)));
    ++nibble;
  }
  return uuid;
}

std::string format_gpu_uuid(const GpuUuid &u)
{
  char buf[64];
  std::snprintf(buf, sizeof buf,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
                u[14], u[15]);
  return buf;
}

std::optional<PciAddress> parse_pci_address(std::string_view text)
{
  // Split "[domain:]bus:device.function".
  const size_t dot = text.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::string_view function_text = text.substr(dot + 1);
  std::string_view rest = text.substr(0, dot);
  const size_t last_colon = rest.rfind(':');
  if (last_colon == std::string_view::npos) return std::nullopt;
  const std::string_view device_text = rest.substr(last_colon + 1);
  rest = rest.substr(0, last_colon);
  std::string_view domain_text = "0";
  std::string_view bus_text = rest;
  if (const size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    domain_text = rest.substr(0, colon);
    bus_text = rest.substr(colon + 1);
  }
  const auto domain = parse_hex_field(domain_text, 8);
  const auto bus = parse_hex_field(bus_text, 2);
  const auto device = parse_hex_field(device_text, 2);
  const auto function = parse_hex_field(function_text, 1);
  if (!domain || !bus || !device || !function || *device > 0x1f || *function > 7)
    return std::nullopt;
  return PciAddress{*domain, *bus, *device, *function};
}

std::string format_pci_address(const PciAddress &p)
{
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", p.domain, p.bus, p.device, p.function);
  return buf;
}

std::optional<DeviceSelector> parse_device_selector(std::string_view text)
{
  DeviceSelector sel;
  sel.text = std::string(text);
  if (!text.empty() && text.size() <= 4 &&
      text.find_first_not_of("0123456789") == std::string_view::npos) {
    sel.kind = DeviceSelector::Kind::index;
    sel.index = static_cast<unsigned>(std::stoul(std::string(text)));
    return sel;
  }
  if (auto uuid = parse_gpu_uuid(text)) {
    sel.kind = DeviceSelector::Kind::uuid;
    sel.uuid = *uuid;
    return sel;
  }
  if (auto pci = parse_pci_address(text)) {
    sel.kind = DeviceSelector::Kind::pci;
    sel.pci = *pci;
    return sel;
  }
  return std::nullopt;
}

} // namespace vram
