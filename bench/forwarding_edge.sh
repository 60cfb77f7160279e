# Sourced by the forwarding benchmarks: the edge they push traffic through. Namespaces
# ${P}gen, ${P}edge and ${P}sink; gen's g0 to the edge's LAN veth lan0 (fd10:a::1/64), the
# edge's WAN veth wan0 (fd5e::1/64) to sink's s0; traffic to fd10:b::/64 is H.Encaps'd (seg6,
# two SIDs) out of wan0. Needs $P; defines E and G (run in the edge, the generator) and sets
# LAN_MAC and GEN_MAC.
# H.Encaps needs seg6 in the kernel (the agent's own check says whether it is there). These
# benchmarks do not go to the VM: under its emulation (TCG) a forwarding rate measures qemu,
# not the data plane, so on such a host they skip and say why.
if ! "$BUILD/edge-manager/edge-manager" --check-kernel-missing --slice-mode table >/dev/null 2>&1; then
  skip "needs a kernel with seg6 encapsulation, which $(uname -r) lacks (edge-manager --check-kernel); not run in the VM, whose emulation would set the rate"
fi
E() { ip netns exec "${P}edge" "$@"; }
G() { ip netns exec "${P}gen" "$@"; }
forwarding_edge_up() {
  for n in gen edge sink; do ip netns add "$P$n"; ip -n "$P$n" link set lo up; done
  ip link add g0 netns "${P}gen" type veth peer name lan0 netns "${P}edge"
  ip link add wan0 netns "${P}edge" type veth peer name s0 netns "${P}sink"
  for l in "gen g0" "edge lan0" "edge wan0" "sink s0"; do set -- $l; ip -n "$P$1" link set "$2" up; done
  E sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.all.accept_dad=0
  E ip -6 addr add fd10:a::1/64 dev lan0 nodad
  E ip -6 addr add fd5e::1/64 dev wan0 nodad
  E ip -6 addr add fc00:0:a::1/128 dev lo
  E ip -6 neigh add fd5e::2 lladdr 02:00:00:00:5e:02 dev wan0
  E ip -6 route add fc00:0:1::/48 via fd5e::2 dev wan0
  E ip sr tunsrc set fc00:0:a::1
  E ip -6 route add fd10:b::/64 encap seg6 mode encap segs fc00:0:1::e,fc00:0:b:1::d6 dev wan0
  LAN_MAC=$(E cat /sys/class/net/lan0/address)
  GEN_MAC=$(G cat /sys/class/net/g0/address)
  E ip -6 neigh add fd10:a::2 lladdr "$GEN_MAC" dev lan0  # where replies to the generator go
}
forwarding_edge_down() {
  for n in gen edge sink; do ip netns del "$P$n" 2>/dev/null || true; done
}
