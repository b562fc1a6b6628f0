// What the views share: the view showing, and the app's last status (app_status).
export const state = {
  /** The view showing: one of the names in app.js's view table. */
  current: "requests",
  /** The last `app_status` answer (null until the first). */
  status: null,
  /** Chat senders ignored since the window opened because the pending list was full. */
  drops: 0,
};
