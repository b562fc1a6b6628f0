// Moving between views from anywhere: app.js owns the view table and registers how.
let go = null;

/** Called once by app.js with its `show`. */
export function onNavigate(show) {
  go = show;
}

/** Shows the view called `name` (as the sidebar would). */
export function navigate(name) {
  if (go) go(name);
}
