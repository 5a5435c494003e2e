#!/usr/bin/env python3
# Shares of a perf profile by where the time goes (docs/delivery.md, "Where durable's CPU goes"):
#   perf record -F 499 --call-graph dwarf,8192 -p $(pgrep -n gyges) -o durable.data -- sleep 3
#   perf script -i durable.data | scripts/perf-classes.py
# Each sample counts for the first class (in the order below) one of its stack frames matches.
import collections
import sys
rules = [
 ("page faults (fresh buffers)", ["asm_exc_page_fault", "do_anonymous_page", "clear_page"]),
 ("segment delete / truncate (kernel)", ["do_unlinkat", "ext4_evict_inode", "truncate_inode"]),
 ("fsync (kernel)", ["ext4_sync_file", "file_write_and_wait", "do_fsync", "vfs_fsync"]),
 ("queue read-back: kernel copy from page cache", ["filemap_read", "copy_page_to_iter", "io_read"]),
 ("file writes (kernel): queue segment + output file", ["ext4_buffered_write_iter", "generic_perform_write", "io_write", "ext4_file_write_iter"]),
 ("TCP receive (kernel)", ["tcp_recvmsg", "__skb_datagram_iter", "sock_recvmsg", "io_recv"]),
 ("queue append: framing copy + CRC32C", ["queue::record::encode_counted"]),
 ("queue read: record parse + CRC32C check", ["queue::record::parse", "queue::record::step"]),
 ("durable file delivery: copy read into owned buffer", ["FileRecords as gyges::output::durable::WriteRecords"]),
 ("malloc/free", ["malloc", "_int_free", "cfree", "__libc_free", "_int_malloc", "realloc"]),
 ("ingest: split, decode, match, encode", ["splitter::", "decoder::", "message::view", "encoder::protobuf", "router", "matcher", "wire::read_varint"]),
 ("scheduling, waits, timers", ["finish_task_switch", "schedule", "io_cqring_wait", "__x64_sys_io_uring_enter", "hrtimer", "timerfd"]),
 ("io_uring / glommio reactor", ["glommio::", "io_uring", "io_submit_sqes"]),
 ("memcpy (other)", ["memmove", "memcpy"]),
]
counts = collections.Counter(); total = 0
stack = []
def flush():
    global total, stack
    if not stack: return
    total += 1
    text = stack
    for name, pats in rules:
        if any(p in fr for fr in text for p in pats):
            counts[name] += 1; break
    else:
        counts["other: " + (text[0].split()[1] if len(text[0].split())>1 else text[0])[:60]] += 1
    stack = []
for line in sys.stdin:
    if not line.strip():
        flush(); continue
    if line[0] in " \t":
        stack.append(line.strip())
flush()
for name, n in counts.most_common(40):
    print(f"{100*n/total:5.1f}%  {name}")
print("samples", total)
