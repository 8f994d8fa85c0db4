# shellcheck shell=sh
# The static part of dnabox-ovs-apply (included when the script is rendered, after the
# header and the daemons): read the OVS layout once, the ensure_* steps that queue one
# transaction, and the kernel-side steps (addresses, links, routes). The rendered script
# adds only the box's data: which bridges, ports, tunnels and addresses to ensure.
# Plain sh: no template syntax. Uses the header's check, changed and apply, and $vsctl.
if [ "$check" = 1 ] && ! $vsctl --no-wait show >/dev/null 2>&1; then
  echo "CHANGED: the layout would be applied once Open vSwitch runs"
  exit 0
fi

if [ -d /sys/module/openvswitch ] || { [ "$check" = 0 ] && modprobe -q openvswitch 2>/dev/null; }; then
  datapath=system
else
  datapath=netdev
  [ -c /dev/net/tun ] || { echo "dnabox-ovs-apply: the netdev datapath needs /dev/net/tun" >&2; exit 1; }
fi

# One read per column up front, and one transaction for every change at the end: asking
# ovsdb once per column made a box with 22 overlay peers cost ~110 ovs-vsctl calls a run.
dump() {
  printf '\n%s\n' "$($vsctl --format=csv --data=bare --no-headings --columns="name,$2" list "$1" 2>/dev/null || true)"
}
interface_type=$(dump interface type)
interface_options=$(dump interface options)
interface_mtu=$(dump interface mtu_request)
port_protected=$(dump port protected)
# shellcheck disable=SC2034 # read only where a plane has a VLAN
port_tag=$(dump port tag)
bridge_datapath=$(dump bridge datapath_type)
bridge_config=$(dump bridge other_config)
# "port,bridge" for every port of every bridge.
port_bridge=$(printf '\n'; for bridge in $($vsctl list-br); do
  for port in $($vsctl list-ports "$bridge"); do echo "$port,$bridge"; done
done; printf '\n')

# value TABLE_DUMP NAME: set $value to NAME's column in the dump; fails when NAME is absent.
value() {
  case "$1" in *"
$2,"*) ;; *) value=""; return 1 ;; esac
  value=${1#*"
$2,"}
  value=${value%%"
"*}
}

transaction=""
# queue VSCTL-COMMAND...: part of the one transaction (names and values hold no spaces).
queue() { transaction="$transaction -- $*"; }

# ensure_column TABLE_DUMP TABLE RECORD COLUMN VALUE
ensure_column() {
  value "$1" "$3" || true
  if [ "$value" != "$5" ]; then
    changed "$2 $3 $4=$5 (was ${value:-unset})"
    queue set "$2" "$3" "$4=$5"
  fi
}

# ensure_key TABLE_DUMP TABLE RECORD MAP KEY VALUE: one key of a map column
ensure_key() {
  value "$1" "$3" || true
  case " $value " in
    *" $5=$6 "*) ;;
    *) changed "$2 $3 $4:$5=$6"; queue set "$2" "$3" "$4:$5=$6" ;;
  esac
}

# ensure_bridge BRIDGE MTU [HWADDR]
ensure_bridge() {
  if value "$bridge_datapath" "$1"; then
    if [ "${value:-system}" != "$datapath" ]; then
      changed "bridge $1 datapath ${value:-system} -> $datapath"
      queue set bridge "$1" datapath_type="$datapath"
    fi
  else
    changed "bridge $1 added (datapath $datapath)"
    queue add-br "$1" -- set bridge "$1" datapath_type="$datapath"
  fi
  ensure_column "$interface_mtu" interface "$1" mtu_request "$2"
  [ -z "${3:-}" ] || ensure_key "$bridge_config" bridge "$1" other_config hwaddr "$3"
}

# ensure_port BRIDGE PORT: the port exists on BRIDGE (and on no other bridge)
ensure_port() {
  value "$port_bridge" "$2" || true
  if [ "$value" != "$1" ]; then
    [ -z "$value" ] || { changed "port $2 moved from $value"; queue del-port "$value" "$2"; }
    changed "port $2 added to $1"
    queue add-port "$1" "$2"
  fi
}

# ensure_tunnels BRIDGE VNI < "PORT REMOTE_IP" lines: a protected VXLAN port to every
# peer, and tunnels to boxes no longer in the plan dropped (so removing a box converges its
# peers). One awk pass joins the wanted tunnels with the dumps: a shell lookup per tunnel
# scanned whole dumps, so a box with 99 peers spent seconds of CPU just comparing.
# Split horizon (port protected): a frame from one tunnel never floods into another (a full
# mesh of tunnels is an L2 loop otherwise: one broadcast storms every box).
ensure_tunnels() {
  tunnel_plan=$({
    echo "@want"; cat
    printf '@owner%s\n' "$port_bridge"
    printf '@type%s\n' "$interface_type"
    printf '@options%s\n' "$interface_options"
    printf '@protected%s\n' "$port_protected"
  } | awk -v bridge="$1" -v vni="$2" '
    /^@/ { section = substr($0, 2); next }
    $0 == "" { next }
    section == "want" { wanted[++count] = $1; remote[$1] = $2; next }
    { split_at = index($0, ","); name = substr($0, 1, split_at - 1); value = substr($0, split_at + 1) }
    section == "owner" { owner[name] = value; if (value == bridge) present[++present_count] = name; next }
    section == "type" { type[name] = value; next }
    section == "options" { options[name] = " " value " "; next }
    section == "protected" { protected[name] = value; next }
    function was(value) { return value == "" ? "unset" : value }
    END {
      for (i = 1; i <= count; i++) {
        port = wanted[i]
        if (owner[port] != bridge) {
          if (owner[port] != "") print "port " port " moved from " owner[port] "\tdel-port " owner[port] " " port
          print "port " port " added to " bridge "\tadd-port " bridge " " port
        }
        if (type[port] != "vxlan")
          print "interface " port " type=vxlan (was " was(type[port]) ")\tset interface " port " type=vxlan"
        if (!index(options[port], " remote_ip=" remote[port] " "))
          print "interface " port " options:remote_ip=" remote[port] "\tset interface " port " options:remote_ip=" remote[port]
        if (!index(options[port], " key=" vni " "))
          print "interface " port " options:key=" vni "\tset interface " port " options:key=" vni
        if (protected[port] != "true")
          print "port " port " protected=true (was " was(protected[port]) ")\tset port " port " protected=true"
      }
      for (i = 1; i <= present_count; i++)
        if (present[i] ~ /^vx-/ && !(present[i] in remote))
          print "stale tunnel " present[i] " removed\tdel-port " bridge " " present[i]
    }')
  while IFS='	' read -r message command; do
    [ -n "$message" ] || continue
    changed "$message"
    # shellcheck disable=SC2086
    queue $command
  done <<EOF
$tunnel_plan
EOF
}

# commit: the queued changes in one transaction; ovs-vsctl waits for ovs-vswitchd to
# create the bridges' devices before the addresses below go on them.
commit() {
  if [ -n "$transaction" ]; then
    # shellcheck disable=SC2086
    apply $vsctl $transaction
  fi
  transaction=""
}

# wait_for_device DEVICE: ovs-vswitchd creates a bridge's device once it has read the
# database. A transaction waits for that, but a box that just restarted has nothing to
# commit, and its addresses would go on devices that do not exist yet.
wait_for_device() {
  [ "$check" = 0 ] || return 0
  waited=0
  until ip link show dev "$1" >/dev/null 2>&1; do
    waited=$((waited + 1))
    if [ "$waited" -gt 200 ]; then
      echo "dnabox-ovs-apply: ovs-vswitchd did not create $1 within 20 s" >&2
      exit 1
    fi
    sleep 0.1
  done
}

# ensure_address DEVICE ADDRESS/PREFIX
ensure_address() {
  if ! ip -o -4 addr show dev "$1" 2>/dev/null | grep -q " inet $2 "; then
    changed "address $2 on $1"
    apply ip addr replace "$2" dev "$1"
  fi
}

# drop_address DEVICE ADDRESS/PREFIX: the address moves from the NIC to its bridge
drop_address() {
  if ip -o -4 addr show dev "$1" 2>/dev/null | grep -q " inet $2 "; then
    changed "address $2 removed from $1"
    apply ip addr del "$2" dev "$1"
  fi
}

ensure_up() {
  if ! ip -o link show dev "$1" 2>/dev/null | grep -q '[<,]UP[,>]'; then
    changed "link $1 up"
    apply ip link set dev "$1" up
  fi
}

# ensure_route CIDR GATEWAY DEVICE
ensure_route() {
  if ! ip -o -4 route show exact "$1" 2>/dev/null | grep -Eq "via $2 dev $3( |$)"; then
    changed "route $1 via $2 dev $3"
    apply ip route replace "$1" via "$2" dev "$3"
  fi
}

# A locally administered MAC derived from an IPv4 address: stable across restarts, so
# neighbours' ARP caches stay valid when a bridge is recreated.
mac_for() {
  # shellcheck disable=SC2046 # split on purpose: the address's four octets
  set -- $(echo "${1%%/*}" | tr . ' ')
  printf '0e:da:%02x:%02x:%02x:%02x' "$1" "$2" "$3" "$4"
}
