/**
 * Flows, groups and meters covering every match field and action the OpenFlow client supports, as
 * pairs [ovs-ofctl input, canonical text]. The canonical texts were printed by
 * `ovs-ofctl -O OpenFlow15 --no-stats dump-flows` / `dump-groups` / `dump-meters` (OVS 3.1) for
 * the same objects; test/integration/openflow-client.test.ts checks them against OVS again.
 *
 * Prerequisites on the switch: group 10, meter 256, and tun_metadata0 mapped to a 4-byte option.
 */
export const FLOW_CASES: readonly (readonly [string, string])[] = [
  ['table=1,priority=10,in_port=1 actions=output:2', 'table=1, priority=10,in_port=1 actions=output:2'],
  ['table=1,priority=11,ip actions=IN_PORT', 'table=1, priority=11,ip actions=IN_PORT'],
  ['table=1,priority=12,ip actions=output:NXM_NX_REG1[]', 'table=1, priority=12,ip actions=output:NXM_NX_REG1[]'],
  [
    'table=1,priority=13,ip actions=output:NXM_NX_REG1[0..15]',
    'table=1, priority=13,ip actions=output:NXM_NX_REG1[0..15]',
  ],
  ['table=1,priority=14,ip actions=group:10', 'table=1, priority=14,ip actions=group:10'],
  [
    'table=1,priority=15,ip actions=set_field:10.0.0.1->ip_dst,load:0x5->NXM_NX_REG3[0..7],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]',
    'table=1, priority=15,ip actions=set_field:10.0.0.1->ip_dst,set_field:0x5/0xff->reg3,move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]',
  ],
  [
    'table=1,priority=16,ip actions=resubmit(,5),resubmit(1,6),resubmit:3,resubmit(IN_PORT,4)',
    'table=1, priority=16,ip actions=resubmit(,5),resubmit(1,6),resubmit:3,resubmit(,4)',
  ],
  [
    'table=1,priority=17,ct_state=+trk-inv,ip actions=resubmit(,7,ct)',
    'table=1, priority=17,ct_state=-inv+trk,ip actions=resubmit(,7,ct)',
  ],
  [
    'table=1,priority=18,ip actions=ct(commit,table=5,zone=65520,nat(dst=10.10.0.24:80),exec(set_field:0x10/0x10->ct_mark))',
    'table=1, priority=18,ip actions=ct(commit,table=5,zone=65520,nat(dst=10.10.0.24:80),exec(set_field:0x10/0x10->ct_mark))',
  ],
  [
    'table=1,priority=19,ip actions=ct(table=5,zone=NXM_NX_REG8[0..15],nat)',
    'table=1, priority=19,ip actions=ct(table=5,zone=NXM_NX_REG8[0..15],nat)',
  ],
  [
    'table=1,priority=20,ip actions=ct(commit,zone=65521,nat(src=169.254.0.253-169.254.0.254:1000-2000,random,persistent),exec(set_field:0x20/0x20->ct_mark,set_field:0x3/0xffffffff->ct_label))',
    'table=1, priority=20,ip actions=ct(commit,zone=65521,nat(src=169.254.0.253-169.254.0.254:1000-2000,persistent,random),exec(set_field:0x20/0x20->ct_mark,set_field:0x3/0xffffffff->ct_label))',
  ],
  [
    'table=1,priority=21,ip actions=ct(commit,force,zone=1,exec(move:NXM_NX_REG0[0..3]->NXM_NX_CT_MARK[0..3]))',
    'table=1, priority=21,ip actions=ct(commit,force,zone=1,exec(move:NXM_NX_REG0[0..3]->NXM_NX_CT_MARK[0..3]))',
  ],
  [
    'table=1,priority=22,ip actions=ct_clear,dec_ttl,note:01.02.03,push_vlan:0x8100,pop_vlan,mod_dl_src:aa:bb:cc:dd:ee:ff,mod_dl_dst:11:22:33:44:55:66',
    'table=1, priority=22,ip actions=ct_clear,dec_ttl,note:01.02.03.00.00.00,push_vlan:0x8100,pop_vlan,set_field:aa:bb:cc:dd:ee:ff->eth_src,set_field:11:22:33:44:55:66->eth_dst',
  ],
  [
    'table=1,priority=23,ip actions=controller(max_len=128,reason=no_match,userdata=01.02,pause,meter_id=256)',
    'table=1, priority=23,ip actions=controller(reason=no_match,max_len=128,userdata=01.02,pause,meter_id=256)',
  ],
  [
    'table=1,priority=24,ip actions=controller,controller(userdata=01.01),controller(id=3),CONTROLLER:100',
    'table=1, priority=24,ip actions=CONTROLLER:65535,controller(userdata=01.01),controller(id=3),CONTROLLER:100',
  ],
  [
    'table=1,priority=25,ip actions=meter:256,clone(set_field:0x1->reg0,resubmit(,3)),goto_table:5',
    'table=1, priority=25,ip actions=meter:256,clone(set_field:0x1->reg0,resubmit(,3)),goto_table:5',
  ],
  [
    'table=1,priority=26,tcp,nw_dst=10.0.0.1,tp_dst=80 actions=learn(table=9,idle_timeout=0,hard_timeout=300,priority=200,delete_learned,cookie=0x203000000000a,eth_type=0x800,nw_proto=6,NXM_OF_TCP_DST[],NXM_OF_IP_DST[],NXM_OF_IP_SRC[],load:NXM_NX_REG4[0..15]->NXM_NX_REG4[0..15],load:NXM_NX_REG4[26]->NXM_NX_REG4[26],load:NXM_NX_REG3[]->NXM_NX_REG3[],load:0x2->NXM_NX_REG4[16..18],load:0x1->NXM_NX_REG0[9])',
    'table=1, priority=26,tcp,nw_dst=10.0.0.1,tp_dst=80 actions=learn(table=9,hard_timeout=300,priority=200,delete_learned,cookie=0x203000000000a,eth_type=0x800,nw_proto=6,NXM_OF_TCP_DST[],NXM_OF_IP_DST[],NXM_OF_IP_SRC[],load:NXM_NX_REG4[0..15]->NXM_NX_REG4[0..15],load:NXM_NX_REG4[26]->NXM_NX_REG4[26],load:NXM_NX_REG3[]->NXM_NX_REG3[],load:0x2->NXM_NX_REG4[16..18],load:0x1->NXM_NX_REG0[9])',
  ],
  [
    'table=1,priority=27,ip actions=set_field:0x1/0x1->xreg1,set_field:0x2->xxreg3,set_field:aa:bb:cc:dd:ee:ff->eth_src,set_field:10.0.0.1->tun_dst,set_field:0x10->tun_id',
    'table=1, priority=27,ip actions=set_field:0x1/0x1->xreg1,set_field:0x2->xxreg3,set_field:aa:bb:cc:dd:ee:ff->eth_src,set_field:10.0.0.1->tun_dst,set_field:0x10->tun_id',
  ],
  ['table=1,priority=28 actions=drop', 'table=1, priority=28 actions=drop'],
  [
    'table=1,priority=29,ip actions=ct(commit,zone=65520,nat(src=10.0.0.1))',
    'table=1, priority=29,ip actions=ct(commit,zone=65520,nat(src=10.0.0.1))',
  ],
  [
    'table=1,priority=30,ipv6 actions=ct(commit,zone=65510,nat(dst=[fe80::1]:80))',
    'table=1, priority=30,ipv6 actions=ct(commit,zone=65510,nat(dst=[fe80::1]:80))',
  ],
  [
    'table=1,priority=31,ipv6 actions=ct(commit,zone=65510,nat(dst=fe80::1-fe80::5))',
    'table=1, priority=31,ipv6 actions=ct(commit,zone=65510,nat(dst=fe80::1-fe80::5))',
  ],
  [
    'table=1,priority=32,ip actions=conjunction(3,1/3),conjunction(4,2/2)',
    'table=1, priority=32,ip actions=conjunction(3,1/3),conjunction(4,2/2)',
  ],
  [
    'table=1,priority=33,conj_id=3,ip actions=set_field:0x3->reg6,ct(commit,table=20,zone=65520,exec(set_field:0x3/0xffffffff->ct_label))',
    'table=1, priority=33,conj_id=3,ip actions=set_field:0x3->reg6,ct(commit,table=20,zone=65520,exec(set_field:0x3/0xffffffff->ct_label))',
  ],
  [
    'table=1,priority=34,ct_state=+new-est+trk,ct_mark=0x10/0x10,ct_label=0x3/0xffffffff,ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.0/24,ct_nw_proto=6,ct_tp_src=100,ct_tp_dst=0x50/0xfff0,tcp,tcp_flags=+syn-ack,tp_src=0x100/0xff00 actions=drop',
    'table=1, priority=34,ct_state=+new-est+trk,ct_mark=0x10/0x10,ct_label=0x3/0xffffffff,ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.0/24,ct_nw_proto=6,ct_tp_src=100,ct_tp_dst=0x50/0xfff0,tcp,tp_src=0x100/0xff00,tcp_flags=+syn-ack actions=drop',
  ],
  [
    'table=1,priority=35,ct_zone=65520,pkt_mark=0x80000000/0x80000000,metadata=0x5,tun_id=0x10,tun_src=1.1.1.1,tun_dst=2.2.2.0/24,reg0=0x1/0xf,reg15=7,xreg2=0x100000002/0xff000000ff,icmp,icmp_type=3,icmp_code=10 actions=drop',
    'table=1, priority=35,pkt_mark=0x80000000/0x80000000,ct_zone=65520,icmp,reg0=0x1/0xf,reg4=0x1/0xff,reg5=0x2/0xff,reg15=0x7,tun_id=0x10,tun_src=1.1.1.1,tun_dst=2.2.2.0/24,metadata=0x5,icmp_type=3,icmp_code=10 actions=drop',
  ],
  [
    'table=1,priority=36,icmp6,ipv6_src=fe80::1,ipv6_dst=2001:db8::/32,icmp_type=135,nd_target=fe80::2 actions=drop',
    'table=1, priority=36,icmp6,ipv6_src=fe80::1,ipv6_dst=2001:db8::/32,icmp_type=135,nd_target=fe80::2 actions=drop',
  ],
  [
    'table=1,priority=37,arp,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/8,arp_sha=aa:bb:cc:dd:ee:ff,arp_tha=00:00:00:00:00:00 actions=drop',
    'table=1, priority=37,arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/8,arp_op=1,arp_sha=aa:bb:cc:dd:ee:ff,arp_tha=00:00:00:00:00:00 actions=drop',
  ],
  [
    'table=1,priority=38,vlan_tci=0x1000/0x1000,dl_src=aa:bb:cc:00:00:00/ff:ff:ff:00:00:00,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,dl_type=0x88cc actions=drop',
    'table=1, priority=38,vlan_tci=0x1000/0x1000,dl_src=aa:bb:cc:00:00:00/ff:ff:ff:00:00:00,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,dl_type=0x88cc actions=drop',
  ],
  [
    'table=1,priority=39,udp,ip_dscp=46,udp_src=53,nw_src=10.0.0.0/255.0.255.0 actions=drop',
    'table=1, priority=39,udp,nw_src=10.0.0.0/255.0.255.0,nw_tos=184,tp_src=53 actions=drop',
  ],
  ['table=1,priority=40,sctp,sctp_dst=80 actions=drop', 'table=1, priority=40,sctp,tp_dst=80 actions=drop'],
  ['table=1,priority=41,xxreg3=0x1/0x1 actions=drop', 'table=1, priority=41,reg15=0x1/0x1 actions=drop'],
  ['table=1,priority=42,dl_vlan=10 actions=drop', 'table=1, priority=42,dl_vlan=10 actions=drop'],
  ['table=1,priority=43,udp6,udp_dst=53 actions=drop', 'table=1, priority=43,udp6,tp_dst=53 actions=drop'],
  [
    'table=1,priority=44,tcp,tcp_dst=0x0/0xff00 actions=drop',
    'table=1, priority=44,tcp,tp_dst=0x0/0xff00 actions=drop',
  ],
  ['table=1,priority=45,ct_state=-trk actions=drop', 'table=1, priority=45,ct_state=-trk actions=drop'],
  ['table=1,priority=46,ct_state=0/0xff actions=drop', 'table=1, priority=46,ct_state=0 actions=drop'],
  [
    'table=1,priority=47,ct_label=0x1000000000000000000000000/0xffffffffffffffffffffffffffffffff actions=drop',
    'table=1, priority=47,ct_label=0x1000000000000000000000000 actions=drop',
  ],
  ['table=1,priority=48,tcp,tcp_flags=0x2/0xfff actions=drop', 'table=1, priority=48,tcp,tcp_flags=syn actions=drop'],
  ['table=1,priority=49,tcp,tcp_flags=0x12 actions=drop', 'table=1, priority=49,tcp,tcp_flags=syn|ack actions=drop'],
  ['table=1,priority=50,in_port=LOCAL actions=drop', 'table=1, priority=50,in_port=LOCAL actions=drop'],
  ['table=1,priority=51,vlan_tci=0x1005 actions=drop', 'table=1, priority=51,dl_vlan=5,dl_vlan_pcp=0 actions=drop'],
  [
    'table=1,priority=52,ip,nw_ttl=5,nw_ecn=1,nw_frag=later actions=output:NXM_NX_REG0[0..15]',
    'table=1, priority=52,ip,nw_ecn=1,nw_ttl=5,nw_frag=later actions=output:NXM_NX_REG0[0..15]',
  ],
  [
    'table=1,priority=53,reg0=0,reg1=0/0x200,metadata=0,pkt_mark=0,ct_mark=0,tun_id=0,ct_label=0 actions=LOCAL,NORMAL,ALL,FLOOD,output:65279,TABLE',
    'table=1, priority=53,pkt_mark=0,ct_mark=0,ct_label=0,reg0=0,reg1=0/0x200,tun_id=0,metadata=0 actions=LOCAL,NORMAL,ALL,FLOOD,output:65279,TABLE',
  ],
  [
    'table=2,priority=1,idle_timeout=10,hard_timeout=20,importance=5,send_flow_rem,check_overlap,reset_counts,no_packet_counts,no_byte_counts,cookie=0x0,tcp actions=set_field:0->reg0,set_field:0x0/0xff->reg1,set_field:0->tun_id,set_field:0->metadata,set_field:0->pkt_mark,set_field:00:00:00:00:00:00->eth_src,set_field:0->tcp_dst,set_field:0->xreg0,set_field:0/0xff->xxreg0',
    'table=2, idle_timeout=10, hard_timeout=20, send_flow_rem check_overlap reset_counts no_packet_counts no_byte_counts importance=5, priority=1,tcp actions=set_field:0->reg0,set_field:0/0xff->reg1,set_field:0->tun_id,set_field:0->metadata,set_field:0->pkt_mark,set_field:00:00:00:00:00:00->eth_src,set_field:0->tcp_dst,set_field:0->xreg0,set_field:0/0xff->xxreg0',
  ],
  [
    'table=2,priority=8,ipv6 actions=set_field:fe80::1->ipv6_src,set_field:fe80::/64->ipv6_dst',
    'table=2, priority=8,ipv6 actions=set_field:fe80::1->ipv6_src,set_field:fe80::/64->ipv6_dst',
  ],
  [
    'table=2,priority=7,ip actions=learn(table=10,idle_timeout=60,fin_idle_timeout=5,fin_hard_timeout=6,priority=210,send_flow_rem,delete_learned,limit=5,eth_type=0x800,NXM_NX_REG1[0..15]=NXM_OF_IN_PORT[],NXM_OF_IP_SRC[]=NXM_OF_IP_DST[],ip_proto=17,NXM_NX_REG0[4..7]=0xa,output:NXM_OF_IN_PORT[],load:0x1->NXM_NX_REG0[20],load:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[])',
    'table=2, priority=7,ip actions=learn(table=10,idle_timeout=60,fin_idle_timeout=5,fin_hard_timeout=6,priority=210,send_flow_rem,delete_learned,limit=5,eth_type=0x800,NXM_NX_REG1[0..15]=NXM_OF_IN_PORT[],NXM_OF_IP_SRC[]=NXM_OF_IP_DST[],nw_proto=17,NXM_NX_REG0[4..7]=0xa,output:NXM_OF_IN_PORT[],load:0x1->NXM_NX_REG0[20],load:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[])',
  ],
  [
    'table=2,priority=9,tcp actions=set_field:80->tcp_dst,set_field:0x50/0xf0->tcp_src,set_field:10.0.0.0/24->ip_src,set_field:10->ip_dscp',
    'table=2, priority=9,tcp actions=set_field:80->tcp_dst,set_field:80/0xf0->tcp_src,set_field:10.0.0.0/24->ip_src,set_field:10->ip_dscp',
  ],
  [
    'table=2,priority=10,ip actions=ct(commit,zone=NXM_NX_REG8[0..15]),ct(commit,nat(src=10.0.0.1:100,hash)),ct(commit,nat(src))',
    'table=2, priority=10,ip actions=ct(commit,zone=NXM_NX_REG8[0..15]),ct(commit,nat(src=10.0.0.1:100,hash)),ct(commit,nat(src))',
  ],
  ['table=2,priority=15,tcp actions=ct(table=3,alg=ftp)', 'table=2, priority=15,tcp actions=ct(table=3,alg=ftp)'],
  [
    'table=2,priority=16,ip actions=note:aabbccddeeff00112233',
    'table=2, priority=16,ip actions=note:aa.bb.cc.dd.ee.ff.00.11.22.33.00.00.00.00',
  ],
  [
    'table=2,priority=11,ip actions=move:NXM_NX_XXREG3[0..63]->NXM_NX_XXREG0[64..127],move:OXM_OF_PKT_REG0[0..31]->NXM_NX_REG5[],move:NXM_NX_CT_LABEL[32..63]->NXM_NX_REG3[],move:NXM_OF_IP_SRC[]->NXM_NX_REG3[],move:NXM_OF_IN_PORT[]->NXM_NX_REG2[0..15]',
    'table=2, priority=11,ip actions=move:NXM_NX_XXREG3[0..63]->NXM_NX_XXREG0[64..127],move:OXM_OF_PKT_REG0[0..31]->NXM_NX_REG5[],move:NXM_NX_CT_LABEL[32..63]->NXM_NX_REG3[],move:NXM_OF_IP_SRC[]->NXM_NX_REG3[],move:NXM_OF_IN_PORT[]->NXM_NX_REG2[0..15]',
  ],
  [
    'table=2,priority=12,ip,tun_metadata0=0x5 actions=set_field:0x7->tun_metadata0',
    'table=2, priority=12,ip,tun_metadata0=0x5 actions=set_field:0x7->tun_metadata0',
  ],
  [
    'table=2,priority=13,ip,tun_metadata0=0x5/0xffff0000 actions=drop',
    'table=2, priority=13,ip,tun_metadata0=0/0xffff0000 actions=drop',
  ],
  [
    'table=2,cookie=0xffffffffffffffff,priority=0 actions=goto_table:3',
    'cookie=0xffffffffffffffff, table=2, priority=0 actions=goto_table:3',
  ],
  [
    'table=2,priority=14,ipv6,ipv6_src=fe80::/ffff:0:ffff:: actions=drop',
    'table=2, priority=14,ipv6,ipv6_src=fe80::/ffff:0:ffff:: actions=drop',
  ],
  [
    'table=2,priority=17,udp,udp_src=0x1000/0xf000,udp_dst=0x35/0xff actions=drop',
    'table=2, priority=17,udp,tp_src=0x1000/0xf000,tp_dst=0x35/0xff actions=drop',
  ],
  [
    'table=2,priority=18,sctp6,sctp_src=0x100/0xff00,ipv6_dst=fd00::/8 actions=drop',
    'table=2, priority=18,sctp6,ipv6_dst=fd00::/8,tp_src=0x100/0xff00 actions=drop',
  ],
  [
    'table=2,priority=19,icmp6,icmp_type=1,icmp_code=1 actions=drop',
    'table=2, priority=19,icmp6,icmp_type=1,icmp_code=1 actions=drop',
  ],
  [
    'table=2,priority=20,ip,ct_state=+new+trk,ct_zone=65521 actions=ct(commit,zone=65521,nat(src=10.0.0.1-10.0.0.9,persistent))',
    'table=2, priority=20,ct_state=+new+trk,ct_zone=65521,ip actions=ct(commit,zone=65521,nat(src=10.0.0.1-10.0.0.9,persistent))',
  ],
  [
    'table=2,priority=21,ipv6 actions=ct(commit,nat(src=[fd00::1]-[fd00::9]:1000-1999,random))',
    'table=2, priority=21,ipv6 actions=ct(commit,nat(src=[fd00::1]-[fd00::9]:1000-1999,random))',
  ],
  [
    'table=2,priority=22,ip actions=set_field:0x3/0xff00->xxreg0,set_field:0xff00000000/0xff00000000->xreg7,set_field:0x4->reg15',
    'table=2, priority=22,ip actions=set_field:0/0xff00->xxreg0,set_field:0xff00000000/0xff00000000->xreg7,set_field:0x4->reg15',
  ],
  [
    'table=2,priority=23,ip actions=controller(reason=invalid_ttl,max_len=64,meter_id=7)',
    'table=2, priority=23,ip actions=controller(reason=invalid_ttl,max_len=64,meter_id=7)',
  ],
];

export const GROUP_CASES: readonly (readonly [string, string])[] = [
  [
    'group_id=10,type=select,selection_method=hash,fields(ip_src,nw_proto),bucket=bucket_id:0,weight:100,actions=set_field:0xa0a0018->reg3,set_field:0x50/0xffff->reg4,resubmit(,11),bucket=bucket_id:1,weight:50,actions=output:1',
    'group_id=10,type=select,selection_method=hash,fields(ip_src,nw_proto),bucket=bucket_id:0,weight:100,actions=set_field:0xa0a0018->reg3,set_field:0x50/0xffff->reg4,resubmit(,11),bucket=bucket_id:1,weight:50,actions=output:1',
  ],
  [
    'group_id=11,type=all,bucket=actions=resubmit(,5),bucket=actions=set_field:0x400000/0x600000->reg0,resubmit(,7)',
    'group_id=11,type=all,bucket=bucket_id:0,actions=resubmit(,5),bucket=bucket_id:1,actions=set_field:0x400000/0x600000->reg0,resubmit(,7)',
  ],
  [
    'group_id=12,type=select,bucket=weight:100,actions=drop',
    'group_id=12,type=select,bucket=bucket_id:0,weight:100,actions=drop',
  ],
  [
    'group_id=13,type=select,selection_method=dp_hash,bucket=weight:100,actions=output:1',
    'group_id=13,type=select,selection_method=dp_hash,bucket=bucket_id:0,weight:100,actions=output:1',
  ],
  [
    'group_id=20,type=select,bucket=actions=output:1,bucket=weight:1,actions=output:2',
    'group_id=20,type=select,bucket=bucket_id:0,actions=output:1,bucket=bucket_id:1,actions=output:2',
  ],
  [
    'group_id=21,type=select,selection_method=hash,fields=ip_dst,bucket=weight:5,actions=output:1',
    'group_id=21,type=select,selection_method=hash,fields=ip_dst,bucket=bucket_id:0,weight:5,actions=output:1',
  ],
  [
    'group_id=22,type=indirect,bucket=actions=output:1',
    'group_id=22,type=indirect,bucket=bucket_id:0,actions=output:1',
  ],
  ['group_id=23,type=all', 'group_id=23,type=all'],
  [
    'group_id=24,type=select,selection_method=hash,selection_method_param=7,fields(eth_src,tcp_dst),bucket=bucket_id:5,weight:3,actions=ct(commit,table=12,zone=65520,nat(dst=10.0.0.1:8080)),bucket=bucket_id:9,weight:4,watch_port:2,actions=output:2',
    'group_id=24,type=select,selection_method=hash,selection_method_param=7,fields(eth_src,tcp_dst),bucket=bucket_id:5,weight:3,actions=ct(commit,table=12,zone=65520,nat(dst=10.0.0.1:8080)),bucket=bucket_id:9,weight:4,watch_port:2,actions=output:2',
  ],
];

export const METER_CASES: readonly (readonly [string, string])[] = [
  [
    'meter=256 pktps burst stats bands=type=drop rate=5000 burst_size=10000',
    'meter=256 pktps burst stats bands=\ntype=drop rate=5000 burst_size=10000',
  ],
  ['meter=2 pktps bands=type=drop rate=10', 'meter=2 pktps bands=\ntype=drop rate=10'],
  [
    'meter=3 kbps burst stats bands=type=drop rate=10 burst_size=20',
    'meter=3 kbps burst stats bands=\ntype=drop rate=10 burst_size=20',
  ],
];
