package output

// maxCachedDirs bounds the directories a Writer keeps open. Results under more directories
// than that are still written, opening and closing their directory each time.
const maxCachedDirs = 256
