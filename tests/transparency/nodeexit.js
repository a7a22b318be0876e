// 20 MB to stdout, then process.exit(5): Node writes a file synchronously
// and drops what a pipe still has queued at exit.
const chunk = "y".repeat(999) + "\n";
for (let i = 0; i < 20000; i++) process.stdout.write(chunk);
process.exit(5);
