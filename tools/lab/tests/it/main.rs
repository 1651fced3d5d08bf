//! mimi-lab as a person runs it: shipped scenarios in their short form, bad scenario files,
//! and the live view in a headless browser.
