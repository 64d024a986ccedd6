package doctor

import "io/fs"

// modesMean is false: Windows guards files with ACLs, and Go's mode bits
// there say only read-only or not, so judging them would fail every file.
const modesMean = false

// fileUID knows no owner: Windows owners are SIDs, not uids.
func fileUID(fs.FileInfo) (int, bool) { return 0, false }
